"""A virtual clock: time moves only when a test says so, and sleepers wake in deadline order."""

from __future__ import annotations

import asyncio
import heapq
import itertools
from collections.abc import Awaitable
from datetime import UTC, datetime, timedelta
from typing import TypeVar

T = TypeVar("T")

WALL_START = datetime(2026, 1, 1, tzinfo=UTC)


class FakeClock:
    """Implements bot.clock.Clock with virtual seconds; no real sleeping, fully deterministic.

    `advance(dt)` walks time forward through every pending deadline in order, letting the event
    loop run the woken tasks (`settle_rounds` passes) before the next. `drive(aw)` runs an
    awaitable to completion, jumping from deadline to deadline as long as it is blocked.
    """

    def __init__(
        self, start: float = 0.0, *, wall_start: datetime = WALL_START, settle_rounds: int = 50
    ) -> None:
        self._now = start
        self._origin = start
        self._wall_start = wall_start
        self._settle_rounds = settle_rounds
        self._sleepers: list[tuple[float, int, asyncio.Future[None]]] = []
        self._order = itertools.count()

    def now(self) -> float:
        return self._now

    def wall(self) -> datetime:
        return self._wall_start + timedelta(seconds=self._now - self._origin)

    async def sleep(self, seconds: float) -> None:
        if seconds <= 0:
            await asyncio.sleep(0)
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._sleepers, (self._now + seconds, next(self._order), future))
        await future  # a cancelled sleep leaves a cancelled future, skipped when reached

    @property
    def sleeping(self) -> int:
        """How many sleeps are pending."""
        return sum(1 for _, _, future in self._sleepers if not future.done())

    def next_deadline(self) -> float | None:
        while self._sleepers and self._sleepers[0][2].done():
            heapq.heappop(self._sleepers)
        return self._sleepers[0][0] if self._sleepers else None

    async def settle(self) -> None:
        """Let every task that is ready run until it blocks again."""
        for _ in range(self._settle_rounds):
            await asyncio.sleep(0)

    async def advance(self, seconds: float) -> None:
        """Move time forward by `seconds`, waking sleepers in deadline order along the way."""
        if seconds < 0:
            raise ValueError("time does not go backwards")
        target = self._now + seconds
        await self.settle()
        while (deadline := self.next_deadline()) is not None and deadline <= target:
            self._jump(deadline)
            await self.settle()
        self._now = target
        await self.settle()

    async def run_until_idle(self, limit: float = 3600.0) -> None:
        """Jump from deadline to deadline until nothing sleeps on this clock."""
        end = self._now + limit
        await self.settle()
        while (deadline := self.next_deadline()) is not None:
            if deadline > end:
                raise RuntimeError(f"still sleeping after {limit}s of virtual time")
            self._jump(deadline)
            await self.settle()

    async def drive(self, awaitable: Awaitable[T], limit: float = 3600.0) -> T:
        """Await `awaitable`, advancing virtual time whenever it waits on this clock."""
        task = asyncio.ensure_future(awaitable)
        end = self._now + limit
        while True:
            await self.settle()
            if task.done():
                return task.result()
            deadline = self.next_deadline()
            if deadline is None or deadline > end:
                task.cancel()
                await asyncio.wait([task])
                why = "waits on something other than the clock" if deadline is None else "too long"
                raise RuntimeError(f"drive(): the awaited task {why}")
            self._jump(deadline)

    def _jump(self, deadline: float) -> None:
        self._now = max(self._now, deadline)
        while self._sleepers and self._sleepers[0][0] <= self._now:
            _, _, future = heapq.heappop(self._sleepers)
            if not future.done():
                future.set_result(None)
