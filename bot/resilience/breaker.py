"""Circuit breakers per provider: closed -> open -> half-open (one probe) -> closed.

Written here rather than taken from a library: pybreaker has no asyncio support, and aiobreaker and
purgatory let every concurrent caller through in half-open and read the wall clock (see
docs: providers.md §8.1). This one admits exactly one probe, with a lease so a probe that never
reports back cannot pin the circuit, times intervals on the monotonic clock, and knows the error
taxonomy: request errors are neutral, quota and config errors open it at once.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from dataclasses import dataclass
from enum import StrEnum

from bot.clock import SYSTEM_CLOCK, Clock
from bot.llm.types import ErrorClass

log = logging.getLogger("parley.breaker")


class BreakerState(StrEnum):
    CLOSED = "CLOSED"
    OPEN = "OPEN"
    HALF_OPEN = "HALF_OPEN"


@dataclass(frozen=True, slots=True)
class BreakerPolicy:
    failure_threshold: int = 5
    failure_window: float = 600.0  # seconds
    open_timeout: float = 600.0  # seconds before a probe is allowed
    success_threshold: int = 1
    probe_lease: float = 120.0  # a probe that has not reported by then is presumed lost


@dataclass(frozen=True, slots=True)
class BreakerSnapshot:
    name: str
    state: BreakerState
    failures_in_window: int
    retry_in: float  # seconds until a probe is allowed (0 unless open)
    last_error: str | None


class CircuitBreaker:
    def __init__(
        self,
        name: str,
        policy: BreakerPolicy | None = None,
        *,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        self.name = name
        self.policy = policy or BreakerPolicy()
        self._clock = clock
        self._state = BreakerState.CLOSED
        self._failures: deque[float] = deque()
        self._open_until = 0.0
        self._probe_until: float | None = None  # lease end of the probe in flight, if any
        self._probe_successes = 0
        self._last_error: str | None = None

    # -- queries ---------------------------------------------------------------------------
    @property
    def state(self) -> BreakerState:
        if self._state is BreakerState.OPEN and self._clock.now() >= self._open_until:
            return BreakerState.HALF_OPEN
        return self._state

    def snapshot(self) -> BreakerSnapshot:
        now = self._clock.now()
        self._prune(now)
        retry_in = max(0.0, self._open_until - now) if self._state is BreakerState.OPEN else 0.0
        return BreakerSnapshot(
            self.name, self.state, len(self._failures), retry_in, self._last_error
        )

    # -- the protocol: acquire, then report exactly one outcome --------------------------------
    def try_acquire(self) -> bool:
        """May a request go to this provider now? In half-open only one caller gets a yes."""
        now = self._clock.now()
        if self._state is BreakerState.CLOSED:
            return True
        if self._state is BreakerState.OPEN:
            if now < self._open_until:
                return False
            self._transition(BreakerState.HALF_OPEN)
        if self._probe_until is not None and now < self._probe_until:
            return False  # a probe is already in flight
        self._probe_until = now + self.policy.probe_lease
        return True

    def record_success(self) -> None:
        if self._state is BreakerState.CLOSED:
            return
        if self._state is BreakerState.HALF_OPEN:
            self._probe_until = None
            self._probe_successes += 1
            if self._probe_successes >= self.policy.success_threshold:
                self._failures.clear()
                self._transition(BreakerState.CLOSED)

    def record_neutral(self) -> None:
        """The call ended without telling us about the provider's health (a 400, a cancel)."""
        self._probe_until = None

    def record_failure(
        self,
        error_class: ErrorClass,
        *,
        detail: str = "",
        retry_after: float | None = None,
        reset_at: float | None = None,
    ) -> None:
        now = self._clock.now()
        if error_class is ErrorClass.REQUEST:
            self.record_neutral()
            return
        self._last_error = detail or error_class.value
        if error_class in (ErrorClass.QUOTA, ErrorClass.CONFIG):
            wait = self.policy.open_timeout
            if reset_at is not None:
                wait = max(0.0, reset_at - time.time())
            elif retry_after is not None:
                wait = retry_after
            self._open(now, wait)
            return
        # transient
        if self._state is not BreakerState.CLOSED:
            self._open(now, max(self.policy.open_timeout, retry_after or 0.0))
            return
        self._failures.append(now)
        self._prune(now)
        if len(self._failures) >= self.policy.failure_threshold:
            self._open(now, max(self.policy.open_timeout, retry_after or 0.0))

    # -- internals ---------------------------------------------------------------------------
    def _open(self, now: float, wait: float) -> None:
        self._open_until = now + wait
        self._probe_until = None
        self._probe_successes = 0
        self._transition(BreakerState.OPEN, f"for {wait:.0f}s")

    def _prune(self, now: float) -> None:
        horizon = now - self.policy.failure_window
        while self._failures and self._failures[0] < horizon:
            self._failures.popleft()

    def _transition(self, state: BreakerState, why: str = "") -> None:
        if state is self._state and state is not BreakerState.OPEN:
            return
        log.warning(
            "breaker %s %s -> %s %s (last error: %s)",
            self.name,
            self._state.value,
            state.value,
            why,
            self._last_error or "-",
        )
        self._state = state
        if state is not BreakerState.HALF_OPEN:
            self._probe_successes = 0


class BreakerBoard:
    """One breaker per provider name, created on first use."""

    def __init__(self, policy: BreakerPolicy | None = None, *, clock: Clock = SYSTEM_CLOCK) -> None:
        self._policy = policy or BreakerPolicy()
        self._clock = clock
        self._breakers: dict[str, CircuitBreaker] = {}

    def get(self, name: str) -> CircuitBreaker:
        breaker = self._breakers.get(name)
        if breaker is None:
            breaker = self._breakers[name] = CircuitBreaker(name, self._policy, clock=self._clock)
        return breaker

    def snapshots(self) -> list[BreakerSnapshot]:
        return [b.snapshot() for b in self._breakers.values()]
