"""A call budget per workspace for one rate-limited Web API method, shared by every reply.

Slack limits `chat.update` (Tier 3, about 50 a minute) per workspace and app, not per message, so
ten replies streaming at once in one workspace must share one budget. Calls get evenly spaced
slots; a reply whose slot is too far off is told to come back later (RateLimited) and keeps
coalescing its text meanwhile, while a reply's final text always waits for its slot.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from bot.ports import RateLimited


class TeamBudget:
    def __init__(self, per_minute: float, *, clock: Callable[[], float] = time.monotonic) -> None:
        if per_minute <= 0:
            raise ValueError("per_minute must be positive")
        self.spacing = 60.0 / per_minute
        self._clock = clock
        self._next: dict[str, float] = {}

    def claim(self, team: str, *, max_wait: float) -> float:
        """Reserve the team's next slot and return the seconds to wait for it.

        Raises RateLimited (reserving nothing) when the slot is more than `max_wait` away.
        """
        now = self._clock()
        slot = max(now, self._next.get(team, now))
        wait = slot - now
        if wait > max_wait:
            raise RateLimited(wait, "workspace edit budget spent")
        self._next[team] = slot + self.spacing
        return wait

    def back_off(self, team: str, retry_after: float) -> None:
        """Slack answered 429: nobody in the team calls this method before `retry_after`."""
        resume = self._clock() + retry_after
        self._next[team] = max(self._next.get(team, resume), resume)
