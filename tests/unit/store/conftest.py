"""Fixtures shared by the store tests: a hand-driven wall clock."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

START = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)


class FakeClock:
    """Wall time stands still until a test moves it; sleeping moves it too."""

    def __init__(self, start: datetime = START) -> None:
        self._wall = start
        self._monotonic = 0.0

    def now(self) -> float:
        return self._monotonic

    async def sleep(self, seconds: float) -> None:
        self.advance(seconds)

    def wall(self) -> datetime:
        return self._wall

    def advance(self, seconds: float) -> None:
        self._monotonic += seconds
        self._wall += timedelta(seconds=seconds)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()
