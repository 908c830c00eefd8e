"""SharedRate: a process paces at the bot's rate over the processes that share it now."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from bot.pacing import TeamBudget
from bot.shared_rate import SharedRate, budget_name
from bot.store import Store, StoreUnavailable
from tests.fakes.clock import FakeClock


@pytest.fixture
async def store() -> AsyncIterator[Store]:
    async with await Store.open("sqlite+aiosqlite:///:memory:", clock=FakeClock()) as store:
        yield store


async def test_each_process_paces_at_its_share_and_takes_it_back_when_one_leaves(
    store: Store,
) -> None:
    name = budget_name("discord", "bot-token")
    first, second = TeamBudget(45 * 60), TeamBudget(45 * 60)
    one = SharedRate(store, name, [first])
    two = SharedRate(store, name, [second])
    assert await one.refresh() == 1 and first.spacing == pytest.approx(1 / 45)
    assert await two.refresh() == 2 and second.spacing == pytest.approx(2 / 45)
    assert await one.refresh() == 2 and first.spacing == pytest.approx(2 / 45)
    running = asyncio.create_task(two.run())
    await asyncio.sleep(0)
    running.cancel()  # the second process stops: it leaves its share at once
    await asyncio.gather(running, return_exceptions=True)
    assert await one.refresh() == 1 and first.spacing == pytest.approx(1 / 45)


async def test_a_store_that_cannot_write_keeps_the_last_share(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    budget = TeamBudget(45 * 60)
    shared = SharedRate(store, budget_name("discord", "t"), [budget])
    shared.members = 3
    budget.share(3)

    async def failing(*args: object) -> int:
        raise StoreUnavailable()

    monkeypatch.setattr(shared._shares, "renew", failing)
    assert await shared.refresh() == 3 and budget.spacing == pytest.approx(1 / 15)


def test_the_budget_is_named_by_a_digest_of_the_token_never_the_token() -> None:
    name = budget_name("discord", "MTA-secret-token")
    assert name.startswith("discord:") and "secret" not in name and len(name) == 24
    assert name == budget_name("discord", "MTA-secret-token") != budget_name("discord", "other")


async def test_a_renewal_that_waits_for_the_database_dates_its_lease_from_when_it_runs() -> None:
    clock = FakeClock()
    async with await Store.open("sqlite+aiosqlite:///:memory:", clock=clock) as store:
        name = budget_name("discord", "bot-token")
        one = SharedRate(store, name, [TeamBudget(45 * 60)])
        busy = SharedRate(store, name, [TeamBudget(45 * 60)])
        await one.refresh()
        await busy.refresh()
        async with store._write_lock:  # the store is busy (a full pool, a long write)
            late = asyncio.create_task(busy.refresh())
            await asyncio.sleep(0)
            await clock.advance(one.every * 4)
        assert await late == 2
        await clock.advance(one.every * 4)  # 8 s after the wait ended, 16 s after it began
        assert await one.refresh() == 2  # still counted: the other is not paced at its share
