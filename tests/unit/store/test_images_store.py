"""Image jobs and shared breakers on SQLite (file, two Stores) and PostgreSQL (two Stores)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from bot.domain import Actor
from bot.llm.types import ErrorClass
from bot.resilience.breaker import BreakerPolicy, BreakerState
from bot.resilience.shared_breaker import SharedBreakerBoard
from bot.store import BreakerStore, ImageJob, ImageStore, ImageUsage, Store
from tests.unit.store.conftest import FakeClock
from tests.unit.store.test_postgres_store import pg_server, shared_pg_url

__all__ = ["pg_server", "shared_pg_url"]  # fixtures, re-exported for pytest

LEASE = timedelta(minutes=6)
ALICE = Actor("discord", "g1", "alice")
POLICY = BreakerPolicy(failure_threshold=3, failure_window=60, open_timeout=100, probe_lease=50)


def quote(clock: FakeClock, job_id: str, user: str = "alice", price: str = "0.04") -> ImageJob:
    now = clock.wall()
    return ImageJob(
        id=job_id, tenant_id="discord:g1", platform="discord", channel_id="c1", thread_id="",
        user_id=user, prompt="a fox", options={"seed": 7}, tier="high", size="1024x1024",
        entry="imagen-4", provider="google", model="imagen-4.0-generate-001",
        estimate=Decimal(price), alternatives=(), status="quoted", created_at=now,
        expires_at=now + timedelta(minutes=15),
    )  # fmt: skip


def allow(_usage: ImageUsage, _price: Decimal) -> str | None:
    return None


class ImagesContract:
    async def test_quote_round_trips(self, store: Store, clock: FakeClock) -> None:
        jobs = ImageStore(store)
        await jobs.add_quote(quote(clock, "q1"))
        got = await jobs.get("q1")
        assert got is not None and got.options == {"seed": 7} and got.estimate == Decimal("0.04")

    async def test_two_replicas_claim_a_quote_once(
        self, store: Store, second_store: Store, clock: FakeClock
    ) -> None:
        await ImageStore(store).add_quote(quote(clock, "q1"))
        replicas = [ImageStore(store), ImageStore(second_store)] * 3
        results = await asyncio.gather(
            *(r.claim("q1", ALICE, entry="imagen-4", estimate=Decimal("0.04"), lease=LEASE,
                      check=allow) for r in replicas)
        )  # fmt: skip
        assert sorted(r.kind for r in results) == ["claimed"] + ["taken"] * 5

    async def test_a_claim_is_bound_to_platform_tenant_and_user(
        self, store: Store, second_store: Store, clock: FakeClock
    ) -> None:
        jobs = ImageStore(store)
        await jobs.add_quote(quote(clock, "q1"))
        # The same user id in another guild, or on another platform with a same-named tenant,
        # is someone else: the quote is unknown to them, exactly like an id never issued.
        for stranger in (Actor("discord", "g2", "alice"), Actor("slack", "g1", "alice")):
            for replica in (ImageStore(store), ImageStore(second_store)):
                refused = await replica.claim(
                    "q1", stranger, entry="imagen-4", estimate=Decimal("0.04"), lease=LEASE,
                    check=allow,
                )  # fmt: skip
                assert (refused.kind, refused.job) == ("not_found", None)
                assert await replica.get("q1", stranger) is None
        bob = await jobs.claim("q1", Actor("discord", "g1", "bob"), entry="imagen-4",
                               estimate=Decimal("0.04"), lease=LEASE, check=allow)  # fmt: skip
        assert bob.kind == "not_yours"
        untouched = await jobs.get("q1", ALICE)
        assert untouched is not None and untouched.status == "quoted"
        assert untouched.claimed_at is None
        mine = await jobs.claim("q1", ALICE, entry="imagen-4", estimate=Decimal("0.04"),
                                lease=LEASE, check=allow)  # fmt: skip
        assert mine.kind == "claimed" and mine.job is not None and mine.job.status == "generating"

    async def test_a_cancel_is_bound_to_platform_tenant_and_user(
        self, store: Store, clock: FakeClock
    ) -> None:
        jobs = ImageStore(store)
        await jobs.add_quote(quote(clock, "q1"))
        for stranger in (Actor("discord", "g2", "alice"), Actor("slack", "g1", "alice")):
            refused = await jobs.cancel("q1", stranger)
            assert (refused.kind, refused.job) == ("not_found", None)
        assert (await jobs.cancel("q1", Actor("discord", "g1", "bob"))).kind == "not_yours"
        still = await jobs.get("q1")
        assert still is not None and still.status == "quoted"
        done = await jobs.cancel("q1", ALICE)
        assert done.kind == "claimed" and done.job is not None and done.job.status == "cancelled"

    async def test_limits_see_usage_in_the_claiming_transaction(
        self, store: Store, second_store: Store, clock: FakeClock
    ) -> None:
        jobs = ImageStore(store)
        for n in range(4):
            await jobs.add_quote(quote(clock, f"q{n}"))

        def one_per_hour(usage: ImageUsage, _price: Decimal) -> str | None:
            return "hourly limit" if usage.hour_count >= 1 else None

        replicas = [ImageStore(store), ImageStore(second_store)] * 2
        results = await asyncio.gather(
            *(r.claim(f"q{n}", ALICE, entry="imagen-4", estimate=Decimal("0.04"), lease=LEASE,
                      check=one_per_hour) for n, r in enumerate(replicas))
        )  # fmt: skip
        assert sorted(r.kind for r in results) == ["claimed", "limit", "limit", "limit"]
        usage = await jobs.usage("discord:g1", "alice")
        assert (usage.hour_count, usage.day_cost) == (1, Decimal("0.04"))

    async def test_usage_counts_actual_cost_and_skips_failures(
        self, store: Store, clock: FakeClock
    ) -> None:
        jobs = ImageStore(store)
        for n in range(3):
            await jobs.add_quote(quote(clock, f"q{n}"))
            await jobs.claim(f"q{n}", ALICE, entry="imagen-4", estimate=Decimal("0.04"),
                             lease=LEASE, check=allow)  # fmt: skip
        await jobs.finish("q0", "succeeded", cost=Decimal("0.03"))
        await jobs.finish("q1", "failed")
        usage = await jobs.usage("discord:g1", "alice")  # q2 still generating: its estimate
        assert (usage.day_count, usage.day_cost, usage.tenant_month_cost) == (
            2, Decimal("0.07"), Decimal("0.07"),
        )  # fmt: skip
        clock.advance(3601)
        assert (await jobs.usage("discord:g1", "alice")).hour_count == 0

    async def test_stale_generating_jobs_become_unknown(
        self, store: Store, clock: FakeClock
    ) -> None:
        jobs = ImageStore(store)
        await jobs.add_quote(quote(clock, "q1"))
        await jobs.claim("q1", ALICE, entry="imagen-4", estimate=Decimal("0.04"), lease=LEASE,
                         check=allow)  # fmt: skip
        assert await jobs.expire_stale() == []
        clock.advance(LEASE.total_seconds())
        (job,) = await jobs.expire_stale()
        assert job.status == "unknown"
        assert await jobs.finish("q1", "succeeded") is None  # too late: stays unknown

    async def test_breaker_state_is_shared_and_one_probe_is_granted(
        self, store: Store, second_store: Store, clock: FakeClock
    ) -> None:
        one = SharedBreakerBoard(BreakerStore(store), POLICY, clock=clock).get("openai")
        two = SharedBreakerBoard(BreakerStore(second_store), POLICY, clock=clock).get("openai")
        await one.record_failure(ErrorClass.TRANSIENT)
        await two.record_failure(ErrorClass.REQUEST)  # neutral
        await two.record_failure(ErrorClass.TRANSIENT)
        assert await one.state() is BreakerState.CLOSED
        await one.record_failure(ErrorClass.TRANSIENT, detail="HTTP 500")
        assert await two.state() is BreakerState.OPEN
        assert not await two.try_acquire()
        clock.advance(100)
        grants = await asyncio.gather(*(b.try_acquire() for b in (one, two) * 4))
        assert sum(grants) == 1
        await two.record_success()
        assert await one.state() is BreakerState.CLOSED

    async def test_quota_opens_at_once_and_a_lost_probe_lease_expires(
        self, store: Store, clock: FakeClock
    ) -> None:
        breaker = SharedBreakerBoard(BreakerStore(store), POLICY, clock=clock).get("workers-ai")
        await breaker.record_failure(ErrorClass.QUOTA, retry_after=30)
        snap = await breaker.snapshot()
        assert snap.state is BreakerState.OPEN and snap.retry_in == 30
        clock.advance(30)
        assert await breaker.try_acquire()
        assert not await breaker.try_acquire()  # the probe is out
        clock.advance(50)  # its lease ran out without a report
        assert await breaker.try_acquire()
        await breaker.record_failure(ErrorClass.TRANSIENT)
        assert await breaker.state() is BreakerState.OPEN


class TestImagesOnSqliteFile(ImagesContract):
    @pytest.fixture
    async def store(self, tmp_path: Path, clock: FakeClock) -> AsyncIterator[Store]:
        opened = await Store.open(f"sqlite+aiosqlite:///{tmp_path / 'p.db'}", clock=clock)
        yield opened
        await opened.close()

    @pytest.fixture
    async def second_store(
        self, tmp_path: Path, clock: FakeClock, store: Store
    ) -> AsyncIterator[Store]:
        opened = await Store.open(f"sqlite+aiosqlite:///{tmp_path / 'p.db'}", clock=clock)
        yield opened
        await opened.close()


class TestImagesOnPostgres(ImagesContract):
    @pytest.fixture
    async def store(self, shared_pg_url: str, clock: FakeClock) -> AsyncIterator[Store]:
        opened = await Store.open(shared_pg_url, clock=clock)
        yield opened
        await opened.close()

    @pytest.fixture
    async def second_store(
        self, shared_pg_url: str, clock: FakeClock, store: Store
    ) -> AsyncIterator[Store]:
        opened = await Store.open(shared_pg_url, clock=clock)
        yield opened
        await opened.close()
