"""A call budget per key (a Slack workspace, Discord's global limit), shared by every reply.

Platforms limit some calls per app rather than per message: Slack's `chat.update` (Tier 3, about
50 a minute) per workspace, Discord's REST API (50 requests a second) per bot. Ten replies
streaming at once must then share one budget. Calls get evenly spaced slots; a reply whose slot is
too far off is told to come back later (Deferred) and keeps coalescing its text meanwhile, while
a reply's final text always waits for its slot.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from bot.ports import Deferred


class TeamBudget:
    def __init__(self, per_minute: float, *, clock: Callable[[], float] = time.monotonic) -> None:
        if per_minute <= 0:
            raise ValueError("per_minute must be positive")
        self.spacing = 60.0 / per_minute
        self._clock = clock
        self._next: dict[str, float] = {}

    def wait(self, key: str) -> float:
        """Seconds until the key's next free slot, reserving nothing."""
        return max(self._next.get(key, 0.0) - self._clock(), 0.0)

    def claim(self, key: str, *, max_wait: float) -> float:
        """Reserve the key's next slot and return the seconds to wait for it.

        Raises Deferred (reserving nothing) when the slot is more than `max_wait` away.
        """
        now = self._clock()
        slot = max(now, self._next.get(key, now))
        wait = slot - now
        if wait > max_wait:
            raise Deferred(wait, "call budget spent")
        self._next[key] = slot + self.spacing
        return wait

    def back_off(self, key: str, retry_after: float) -> None:
        """The platform answered 429: nobody under this key calls before `retry_after`."""
        resume = self._clock() + retry_after
        self._next[key] = max(self._next.get(key, resume), resume)
