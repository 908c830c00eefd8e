"""Call budgets per key (a Slack workspace, Discord's global limit), shared by every reply.

Platforms limit some calls per app rather than per message: Slack's `chat.update` (Tier 3, about
50 a minute) per workspace, Discord's REST API (50 requests a second) per bot. Ten replies
streaming at once must then share one budget. Calls get evenly spaced slots (`claim`); a reply's
final text always waits for its slot. Interim frames take places in line (`reserve`): each reply
holds at most one, comes back when it is due and sends its newest text then, so the replies
sharing a budget take turns, and a quiet key's burst is spread over several seconds of them
rather than spent by whoever streamed first.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from bot.ports import Deferred

_EVEN_SHARE = 0.99
"""Of a window's limit, what evenly spaced calls use: arrivals jitter, and one more than the
limit at the window's edge is a 429."""
SPREAD = 8.0
"""Seconds of interim calls over which a quiet key's burst is spent (on top of the steady rate),
keeping one call in hand for a final text: ten replies starting at once in a quiet Slack
workspace (appends at 90 a minute, 22 of them a burst) get an append every ~2.7 s each for about
eight seconds, a typical reply's length, not two each at once and then none for eight."""
_LATE_DECAY = 0.99
"""Per paced request: how fast remembered lateness fades once requests leave on time again."""


class TeamBudget:
    """Evenly spaced call slots per key, `per_minute`, of which a quiet key may spend `burst` at
    once (a generic cell rate: in any `t` seconds at most `burst + t * per_minute / 60` calls).
    `burst=1`: no burst, every call a spacing after the previous one."""

    def __init__(
        self,
        per_minute: float,
        *,
        burst: int = 1,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if per_minute <= 0 or burst < 1:
            raise ValueError("per_minute must be positive and burst at least 1")
        self.spacing = 60.0 / per_minute
        self.burst = burst
        self._tolerance = (burst - 1) * self.spacing
        self._clock = clock
        self._next: dict[str, float] = {}  # the key's theoretical next slot, without its burst
        self._line: dict[str, float] = {}  # the key's next place in line for an interim call
        self._places: dict[str, deque[float]] = {}  # the key's places handed out, still ahead
        self._whole = (per_minute, burst)
        """The rate and burst of the whole budget, which `share` splits."""

    @classmethod
    def within(
        cls,
        limit: int,
        window: float,
        *,
        burst_share: float = 0.25,
        clock: Callable[[], float] = time.monotonic,
    ) -> TeamBudget:
        """A budget that never makes more than `limit` calls in any `window` seconds, however
        the platform counts them (a sliding window too), keeping `burst_share` of the limit as
        a burst for a quiet key and the rest as the steady rate."""
        burst = int(limit * burst_share)
        if burst <= 1:  # too small a window to borrow from: evenly, a hair under the limit
            return cls(limit * 60.0 / window * _EVEN_SHARE, clock=clock)
        return cls((limit - burst) * 60.0 / window, burst=burst, clock=clock)

    def share(self, parts: int) -> None:
        """Pace at one of `parts` equal shares of the whole budget, rate and burst alike (the
        processes that spend it together: bot.shared_rate), for calls not reserved yet; `parts`
        processes at their shares never make more calls in any window than the whole would."""
        per_minute, burst = self._whole
        parts = max(parts, 1)
        self.spacing = 60.0 * parts / per_minute
        self.burst = max(burst // parts, 1)
        self._tolerance = (self.burst - 1) * self.spacing

    def _slot(self, key: str, now: float) -> tuple[float, float]:
        due = self._next.get(key, now)
        return max(now, due - self._tolerance), due

    def now(self) -> float:
        """The budget's clock: what `reserve`'s places are on."""
        return self._clock()

    def wait(self, key: str) -> float:
        """Seconds until the key's next free slot, reserving nothing."""
        now = self._clock()
        return self._slot(key, now)[0] - now

    def claim(self, key: str, *, max_wait: float) -> float:
        """Reserve the key's next slot and return the seconds to wait for it.

        Raises Deferred (reserving nothing) when the slot is more than `max_wait` away.
        """
        now = self._clock()
        slot, due = self._slot(key, now)
        wait = slot - now
        if wait > max_wait:
            raise Deferred(wait, "call budget spent")
        self._next[key] = max(due, slot) + self.spacing
        return wait

    def reserve(self, key: str) -> float:
        """A place in line for an interim call: after every place handed out so far. Returns
        its time, on the budget's clock; its holder comes back then and `claim`s (with its
        newest text). Places are spaced at the steady rate plus the burst spread over SPREAD
        seconds while the calls in hand at the place, less the places ahead of it, are more
        than two (the place's own and one kept for a final text), else at the steady rate.

        A place commits nothing: a final text's `claim` may go first, and a holder who then
        finds no slot at its place is deferred to the budget's next one."""
        now = self._clock()
        ahead = self._places.setdefault(key, deque())
        while ahead and ahead[0] <= now:
            ahead.popleft()
        slot = max(self._slot(key, now)[0], self._line.get(key, now))
        in_hand = (slot + self._tolerance - self._next.get(key, slot)) / self.spacing + 1
        rate = 1.0 / self.spacing
        if in_hand - len(ahead) > 2:
            rate += (self.burst - 1) / SPREAD
        self._line[key] = slot + 1.0 / rate
        ahead.append(slot)
        return slot

    def back_off(self, key: str, retry_after: float) -> None:
        """The platform answered 429: nobody under this key calls before `retry_after` (and
        the burst is gone)."""
        resume = self._clock() + retry_after + self._tolerance
        self._next[key] = max(self._next.get(key, resume), resume)
        self._line[key] = max(self._line.get(key, resume), resume - self._tolerance)


URGENT, NORMAL, LATER = 0, 1, 2
"""Priorities of requests waiting for a SendWindow's slot: a reply's first or final text, the
rest, and work nobody watches (opening a thread) that may wait for them."""
AGING = 2.0
"""Seconds a request waits that count as one step up in priority, so none waits for ever."""


@dataclass(slots=True)
class _Waiter:
    priority: int
    since: float
    ready: asyncio.Future[None]


class SendWindow:
    """A budget paced in two stages, for requests that queue for a connection before they go out.

    `take_slot` waits for the key's next slot before the request asks for a connection (so the
    ones queued hold no socket); when several wait, each slot goes to the most urgent of them
    (the longest waiting first among equals, and each AGING seconds waited a step up). `go_out`,
    once it has its connection, waits until fewer than the rate's worth have gone out in the
    last second, however late a busy loop woke the waiters: the second is stretched by the
    loop's recent lateness (`went_out` says how late a request really left), so requests woken
    together never leave together.
    """

    def __init__(self, budget: TeamBudget, key: str) -> None:
        self.budget = budget
        self.key = key
        self.sent: deque[float] = deque()
        """When paced requests went out, lately."""
        self._late = 0.0  # how late paced requests recently woke for their slot, seconds
        self._waiting: list[_Waiter] = []
        self._dispatcher: asyncio.Task[None] | None = None

    def wait(self) -> float:
        """Seconds until a request asking now (not urgent) would have its slot: the budget's
        next, and one spacing for each request waiting ahead of it."""
        ahead = sum(1 for w in self._waiting if w.priority <= NORMAL and not w.ready.done())
        return self.budget.wait(self.key) + ahead * self.budget.spacing

    async def take_slot(self, priority: int = NORMAL) -> None:
        if not self._waiting and self.budget.wait(self.key) <= 0:
            self.budget.claim(self.key, max_wait=0.0)
            return
        loop = asyncio.get_running_loop()
        waiter = _Waiter(priority, time.monotonic(), loop.create_future())
        self._waiting.append(waiter)
        if self._dispatcher is None or self._dispatcher.done():
            self._dispatcher = loop.create_task(self._dispatch(), name=f"send-window-{self.key}")
        try:
            await waiter.ready
        finally:
            waiter.ready.cancel()  # gone (cancelled) before its slot: the slot goes to another

    async def _dispatch(self) -> None:
        """Hand out slots one at a time while requests wait."""
        while True:
            self._waiting = [w for w in self._waiting if not w.ready.done()]
            if not self._waiting:
                return
            wait = self.budget.wait(self.key)
            if wait > 0:
                slot = time.monotonic() + wait
                await asyncio.sleep(wait)
                self._late = max(time.monotonic() - slot, self._late * _LATE_DECAY)
                continue
            now = time.monotonic()
            best = min(self._waiting, key=lambda w: (w.priority - (now - w.since) / AGING, w.since))
            self._waiting.remove(best)
            self.budget.claim(self.key, max_wait=0.0)
            best.ready.set_result(None)

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


class BucketPacing:
    """Edit pacing per bucket from what the platform says is left of its window (`Remaining`
    calls, `Reset-After` seconds): the calls left spread evenly over the window up to a margin
    before it refills, keeping one call in hand for a final text until then, and none until the
    refill when none is left. A bucket not heard of yet is paced at `default`."""

    LAST_CALL_MARGIN = 1.0
    """Seconds before a window refills when its last call in hand may go as an interim edit (at
    most: one even share of what is left of the window, when that is less)."""
    REFILL_MARGIN = 0.05
    """Seconds past a window's reset before an empty bucket is called again."""
    FLOOR, CEILING = 0.2, 5.0

    def __init__(self, default: float = 1.0) -> None:
        self.default = default
        self._intervals: dict[str, float] = {}
        self._finals: dict[str, float] = {}
        self._refills: dict[str, float] = {}

    def learn(self, key: str, remaining: float, reset_after: float) -> None:
        if not reset_after:
            return
        if remaining >= 1:  # evenly, the last at the margin before the refill
            margin = min(self.LAST_CALL_MARGIN, reset_after / (remaining + 1))
            interval = (reset_after - margin) / remaining
        else:
            interval = reset_after + self.REFILL_MARGIN
        self._intervals[key] = min(max(interval, self.FLOOR), self.CEILING)
        self._finals[key] = 0.0 if remaining >= 1 else reset_after + self.REFILL_MARGIN
        if remaining >= 1:
            self._refills.pop(key, None)
        else:
            self._refills[key] = time.monotonic() + reset_after + self.REFILL_MARGIN

    def refill(self, key: str) -> float:
        """When (monotonic) an empty bucket refills, as last heard; -inf when it is not empty.
        An interval counted from when a call was asked for can fall short of that: the call
        may have waited (for a global slot) before it went out and emptied the bucket."""
        return self._refills.get(key, -math.inf)

    def interval(self, key: str) -> float:
        return self._intervals.get(key, self.default)

    def final_interval(self, key: str) -> float | None:
        """0 while the bucket has a call in hand; None until the platform said (as an
        interim)."""
        return self._finals.get(key)
