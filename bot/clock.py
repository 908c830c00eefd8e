"""Time as a seam: the core asks a Clock, tests hand it a fake one."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime
from typing import Protocol


class Clock(Protocol):
    def now(self) -> float:
        """Monotonic seconds, for intervals only."""
        ...

    async def sleep(self, seconds: float) -> None: ...

    def wall(self) -> datetime:
        """Timezone-aware UTC, for records."""
        ...


class SystemClock:
    def now(self) -> float:
        return time.monotonic()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(max(0.0, seconds))

    def wall(self) -> datetime:
        return datetime.now(UTC)


SYSTEM_CLOCK = SystemClock()
