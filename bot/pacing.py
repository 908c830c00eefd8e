"""Call budgets per key (a Slack workspace, Discord's global limit), shared by every reply.

Platforms limit some calls per app rather than per message: Slack's `chat.update` (Tier 3, about
50 a minute) per workspace, Discord's REST API (50 requests a second) per bot. Ten replies
streaming at once must then share one budget. Calls get evenly spaced slots; a reply whose slot is
too far off is told to come back later (Deferred) and keeps coalescing its text meanwhile, while
a reply's final text always waits for its slot.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections import deque
from collections.abc import Callable

from bot.ports import Deferred

_LATE_DECAY = 0.99
"""Per paced request: how fast remembered lateness fades once requests leave on time again."""


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


class SendWindow:
    """A budget paced in two stages, for requests that queue for a connection before they go out.

    `take_slot` claims the key's next slot and sleeps until it, before the request asks for a
    connection (so the ones queued hold no socket). `go_out`, once it has its connection, waits
    until fewer than the rate's worth have gone out in the last second, however late a busy loop
    woke the sleepers: the second is stretched by the loop's recent lateness (`went_out` says how
    late a request really left), so requests woken together never leave together.
    """

    def __init__(self, budget: TeamBudget, key: str) -> None:
        self.budget = budget
        self.key = key
        self.sent: deque[float] = deque()
        """When paced requests went out, lately."""
        self._late = 0.0  # how late paced requests recently woke for their slot, seconds

    async def take_slot(self) -> None:
        wait = self.budget.claim(self.key, max_wait=math.inf)
        slot = time.monotonic() + wait
        if wait > 0:
            await asyncio.sleep(wait)
        self._late = max(time.monotonic() - slot, self._late * _LATE_DECAY)

    async def go_out(self) -> float:
        """Wait for room in the window; returns when the request was let out."""
        window = 1.0 + min(self._late, 1.0)
        cap = max(1, math.ceil(1.0 / self.budget.spacing))  # requests per second
        while True:
            now = time.monotonic()
            while self.sent and self.sent[0] <= now - window:
                self.sent.popleft()
            if len(self.sent) < cap:
                break
            await asyncio.sleep(self.sent[0] + window - now)
        decided = time.monotonic()
        self.sent.append(decided)
        return decided

    def went_out(self, decided: float) -> None:
        """The request let out at `decided` is on the wire now: a busy loop may have held it."""
        self._late = max(self._late, time.monotonic() - decided)
