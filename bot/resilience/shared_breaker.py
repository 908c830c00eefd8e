"""Circuit breakers whose state lives in the store, so every replica sees the same circuit.

Same states and rules as `breaker.CircuitBreaker` (closed -> open after N transient failures in a
window, or at once on quota/config errors; half-open after the timeout with exactly one leased
probe; request errors neutral), but async: every decision is a read-modify-write of one row in a
locked transaction (`BreakerStore.change`), so two replicas cannot both take the half-open probe.
Times are wall-clock UTC because a monotonic clock means nothing to another process.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from datetime import datetime, timedelta

from bot.clock import SYSTEM_CLOCK, Clock
from bot.llm.types import ErrorClass
from bot.resilience.breaker import BreakerPolicy, BreakerSnapshot, BreakerState
from bot.store.breakers_repo import BreakerChange, BreakerStore
from bot.store.records import BreakerRecord

log = logging.getLogger("parley.breaker")


def effective_state(record: BreakerRecord | None, now: datetime) -> BreakerState:
    """OPEN past its deadline reads as HALF_OPEN (a probe may go), as in the in-process breaker."""
    if record is None:
        return BreakerState.CLOSED
    state = BreakerState(record.state)
    if state is BreakerState.OPEN and record.open_until is not None and now >= record.open_until:
        return BreakerState.HALF_OPEN
    return state


class SharedBreaker:
    """One provider's breaker, backed by a row in `breakers`."""

    def __init__(
        self,
        name: str,
        store: BreakerStore,
        policy: BreakerPolicy | None = None,
        *,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        self.name = name
        self.policy = policy or BreakerPolicy()
        self._store = store
        self._clock = clock

    async def state(self) -> BreakerState:
        return effective_state(await self._store.get(self.name), self._clock.wall())

    async def snapshot(self) -> BreakerSnapshot:
        now = self._clock.wall()
        record = await self._store.get(self.name)
        state = effective_state(record, now)
        if record is None:
            return BreakerSnapshot(self.name, state, 0, 0.0, None)
        horizon = now.timestamp() - self.policy.failure_window
        failures = sum(1 for f in record.failures if f > horizon)
        retry_in = 0.0
        if state is BreakerState.OPEN and record.open_until is not None:
            retry_in = max(0.0, (record.open_until - now).total_seconds())
        return BreakerSnapshot(self.name, state, failures, retry_in, record.last_error)

    async def try_acquire(self) -> bool:
        """May a request go now? Closed: yes. Half-open: yes for exactly one caller, everywhere."""
        now = self._clock.wall()
        if effective_state(await self._store.get(self.name), now) is BreakerState.CLOSED:
            return True  # the common case costs one read, no write
        granted = False

        def acquire(record: BreakerRecord) -> BreakerRecord:
            nonlocal granted
            state = effective_state(record, now)
            if state is BreakerState.CLOSED:
                granted = True
                return record
            if state is BreakerState.OPEN:
                return record
            if record.probe_until is not None and now < record.probe_until:
                return record  # a probe is already in flight (on this replica or another)
            granted = True
            lease = timedelta(seconds=self.policy.probe_lease)
            return replace(record, state=BreakerState.HALF_OPEN.value, probe_until=now + lease)

        await self._change(acquire)
        return granted

    async def record_success(self) -> None:
        def success(record: BreakerRecord) -> BreakerRecord:
            if record.state != BreakerState.HALF_OPEN.value:
                return record  # closed stays closed; a late success does not close an open circuit
            successes = record.probe_successes + 1
            if successes >= self.policy.success_threshold:
                return replace(
                    record,
                    state=BreakerState.CLOSED.value,
                    failures=(),
                    open_until=None,
                    probe_until=None,
                    probe_successes=0,
                )
            return replace(record, probe_until=None, probe_successes=successes)

        if await self.state() is not BreakerState.CLOSED:
            await self._change(success)

    async def record_neutral(self) -> None:
        """The call said nothing about the provider's health (a refused prompt, a cancel)."""

        def neutral(record: BreakerRecord) -> BreakerRecord:
            if record.state == BreakerState.HALF_OPEN.value and record.probe_until is not None:
                return replace(record, probe_until=None)
            return record

        if await self.state() is not BreakerState.CLOSED:
            await self._change(neutral)

    async def record_failure(
        self,
        error_class: ErrorClass,
        *,
        detail: str = "",
        retry_after: float | None = None,
        reset_at: float | None = None,
    ) -> None:
        if error_class is ErrorClass.REQUEST:
            await self.record_neutral()
            return
        now = self._clock.wall()
        policy = self.policy

        def opened(record: BreakerRecord, wait: float) -> BreakerRecord:
            return replace(
                record,
                state=BreakerState.OPEN.value,
                open_until=now + timedelta(seconds=wait),
                probe_until=None,
                probe_successes=0,
                failures=(),
                last_error=detail or error_class.value,
            )

        def failure(record: BreakerRecord) -> BreakerRecord:
            if error_class in (ErrorClass.QUOTA, ErrorClass.CONFIG):
                wait = policy.open_timeout
                if reset_at is not None:
                    wait = max(0.0, reset_at - now.timestamp())
                elif retry_after is not None:
                    wait = retry_after
                return opened(record, wait)
            if record.state != BreakerState.CLOSED.value:
                return opened(record, max(policy.open_timeout, retry_after or 0.0))
            horizon = now.timestamp() - policy.failure_window
            failures = (*(f for f in record.failures if f > horizon), now.timestamp())
            if len(failures) >= policy.failure_threshold:
                return opened(record, max(policy.open_timeout, retry_after or 0.0))
            return replace(record, failures=failures, last_error=detail or error_class.value)

        await self._change(failure)

    async def _change(self, change: BreakerChange) -> None:
        before, after = await self._store.change(self.name, change)
        if before.state != after.state or (
            after.state == BreakerState.OPEN.value and before.open_until != after.open_until
        ):
            log.warning(
                "breaker %s %s -> %s until=%s (last error: %s)",
                self.name,
                before.state,
                after.state,
                after.open_until.isoformat() if after.open_until else "-",
                after.last_error or "-",
            )


class SharedBreakerBoard:
    """One shared breaker per provider name; rows are named `<prefix><provider>`."""

    def __init__(
        self,
        store: BreakerStore,
        policy: BreakerPolicy | None = None,
        *,
        clock: Clock = SYSTEM_CLOCK,
        prefix: str = "image:",
    ) -> None:
        self._store = store
        self._policy = policy or BreakerPolicy()
        self._clock = clock
        self._prefix = prefix
        self._breakers: dict[str, SharedBreaker] = {}

    def get(self, provider: str) -> SharedBreaker:
        breaker = self._breakers.get(provider)
        if breaker is None:
            breaker = SharedBreaker(
                self._prefix + provider, self._store, self._policy, clock=self._clock
            )
            self._breakers[provider] = breaker
        return breaker
