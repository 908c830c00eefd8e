from __future__ import annotations

import time

from bot.llm.types import ErrorClass
from bot.resilience.breaker import BreakerPolicy, BreakerState, CircuitBreaker
from tests.fakes.clock import FakeClock

POLICY = BreakerPolicy(
    failure_threshold=5, failure_window=600, open_timeout=600, success_threshold=1, probe_lease=60
)


def make() -> tuple[CircuitBreaker, FakeClock]:
    clock = FakeClock()
    return CircuitBreaker("p", POLICY, clock=clock), clock


def fail(breaker: CircuitBreaker, n: int, cls: ErrorClass = ErrorClass.TRANSIENT) -> None:
    for _ in range(n):
        assert breaker.try_acquire()
        breaker.record_failure(cls, detail="boom")


async def test_opens_after_threshold_failures_within_window() -> None:
    breaker, _ = make()
    fail(breaker, 4)
    assert breaker.state is BreakerState.CLOSED
    fail(breaker, 1)
    assert breaker.state is BreakerState.OPEN
    assert not breaker.try_acquire()


async def test_failures_outside_the_window_do_not_add_up() -> None:
    breaker, clock = make()
    fail(breaker, 4)
    await clock.advance(601)
    fail(breaker, 4)
    assert breaker.state is BreakerState.CLOSED


async def test_half_open_lets_exactly_one_probe_through_then_closes_on_success() -> None:
    breaker, clock = make()
    fail(breaker, 5)
    await clock.advance(600)
    assert breaker.state is BreakerState.HALF_OPEN
    grants = [breaker.try_acquire() for _ in range(10)]
    assert grants.count(True) == 1
    breaker.record_success()
    assert breaker.state is BreakerState.CLOSED
    assert all(breaker.try_acquire() for _ in range(3))


async def test_failed_probe_opens_again() -> None:
    breaker, clock = make()
    fail(breaker, 5)
    await clock.advance(600)
    assert breaker.try_acquire()
    breaker.record_failure(ErrorClass.TRANSIENT, detail="still down")
    assert breaker.state is BreakerState.OPEN
    await clock.advance(599)
    assert not breaker.try_acquire()
    await clock.advance(1)
    assert breaker.try_acquire()


async def test_a_lost_probe_releases_after_its_lease() -> None:
    breaker, clock = make()
    fail(breaker, 5)
    await clock.advance(600)
    assert breaker.try_acquire()  # this probe never reports back
    assert not breaker.try_acquire()
    await clock.advance(61)
    assert breaker.try_acquire()


async def test_request_errors_are_neutral() -> None:
    breaker, _ = make()
    fail(breaker, 20, ErrorClass.REQUEST)
    assert breaker.state is BreakerState.CLOSED


async def test_quota_error_opens_at_once_until_the_reset() -> None:
    breaker, clock = make()
    assert breaker.try_acquire()
    breaker.record_failure(ErrorClass.QUOTA, detail="daily allocation", reset_at=time.time() + 3600)
    assert breaker.state is BreakerState.OPEN
    await clock.advance(3000)
    assert not breaker.try_acquire()  # the 600 s timeout does not apply: the quota resets later
    await clock.advance(700)
    assert breaker.try_acquire()


async def test_config_error_opens_at_once() -> None:
    breaker, _ = make()
    assert breaker.try_acquire()
    breaker.record_failure(ErrorClass.CONFIG, detail="bad key")
    assert breaker.state is BreakerState.OPEN
    assert breaker.snapshot().last_error == "bad key"


async def test_neutral_outcome_releases_the_probe() -> None:
    breaker, clock = make()
    fail(breaker, 5)
    await clock.advance(600)
    assert breaker.try_acquire()
    breaker.record_neutral()  # e.g. the user pressed Stop during the probe
    assert breaker.try_acquire()
