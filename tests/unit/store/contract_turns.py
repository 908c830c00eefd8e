"""Store contract for running turns: leases, saved progress, recovery and guarded finishing.

Mixed into StoreContract, so it runs on every backend (SQLite file and memory, PostgreSQL).
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from bot.domain import ConversationKey
from bot.ports import MessageRef
from bot.store import (
    Store,
    StoredMessage,
    TurnProgress,
    TurnResult,
    TurnStore,
    UsageEntry,
    UsageStore,
)
from bot.store.orgs_repo import WorkspaceOrgs
from bot.store.shares_repo import RateShares
from bot.store.turns_repo import Marks
from tests.unit.store.conftest import FakeClock

KEY = ConversationKey("slack", "T1", "C1", "1700000000.000100")
LEASE = timedelta(seconds=30)
SINCE = datetime(2000, 1, 1, tzinfo=UTC)


def flat_bill(turn: StoredMessage) -> tuple[int, int, Decimal | None]:
    return turn.prompt_tokens or 0, len(turn.content), Decimal("0.001")


async def _turn(store: Store, owner: str | None, *, asker: str = "u1") -> StoredMessage:
    conversation = await store.ensure_conversation(KEY, asker, "hello")
    question = await store.add_message(conversation.id, "user", "q", user_id=asker)
    return await store.add_message(
        conversation.id,
        "assistant",
        "",
        status="streaming",
        parent_id=question.id,
        model="llama-3.1-8b",
        owner=owner,
        lease=LEASE if owner else None,
        prompt_tokens=120,
    )


def _result(text: str) -> TurnResult:
    return TurnResult(text, "complete", "stop", "llama-3.1-8b", "workers-ai", 120, 7,
                      Decimal("0.002"), 300, 900)  # fmt: skip


class TurnsContract:
    async def test_recovery_takes_only_turns_whose_owner_stopped_renewing(
        self, store: Store, clock: FakeClock
    ) -> None:
        turns = TurnStore(store)
        live = await _turn(store, "alive")
        legacy = await _turn(store, None)  # from before leases: nobody can be running it
        dead = await _turn(store, "dead")
        clock.advance(20)
        await turns.heartbeat("alive", LEASE)
        clock.advance(15)  # "dead" stopped renewing 35 s ago, "alive" 15 s ago
        taken = await turns.recover(flat_bill)
        assert [t.message.id for t in taken] == [legacy.id, dead.id]
        assert {t.message.status for t in taken} == {"interrupted"}
        assert {t.message.finish_reason for t in taken} == {"restart"}
        still = await store.get_message(live.id)
        assert still is not None and still.status == "streaming"
        assert await turns.recover(flat_bill) == []  # taken once only
        clock.advance(31)
        assert [t.message.id for t in await turns.recover(flat_bill)] == [live.id]

    async def test_a_heartbeat_writes_a_turn_once_and_renews_idle_ones_only_when_due(
        self, store: Store, clock: FakeClock
    ) -> None:
        turns = TurnStore(store)
        busy, idle = await _turn(store, "p1"), await _turn(store, "p1")
        clock.advance(5)
        saved = TurnProgress(busy.id, "more text", ())
        assert await turns.heartbeat("p1", LEASE, [saved]) == 1  # idle's lease is fresh
        clock.advance(6)  # idle's lease is down to 19 s of 30: under two thirds
        assert await turns.heartbeat("p1", LEASE, [TurnProgress(busy.id, "more text!", ())]) == 2
        clock.advance(25)  # 36 s since idle started: alive only because it was renewed
        assert await turns.recover(flat_bill) == []
        clock.advance(6)
        taken = await turns.recover(flat_bill)
        assert {t.message.id for t in taken} == {busy.id, idle.id}

    async def test_a_heartbeat_saves_progress_that_recovery_bills_and_returns(
        self, store: Store, clock: FakeClock
    ) -> None:
        turns = TurnStore(store)
        turn = await _turn(store, "p1", asker="alice")
        refs = (MessageRef("1700000000.000200", "C1"), MessageRef("1700000000.000300", "C1"))
        progress = TurnProgress(turn.id, "Half an answer", refs, "workers-ai", "llama-3.1-8b")
        assert await turns.heartbeat("p1", LEASE, [progress]) == 1
        await turns.heartbeat("someone-else", LEASE, [TurnProgress(turn.id, "forged", ())])
        clock.advance(31)
        (taken,) = await turns.recover(flat_bill)
        assert taken.message.content == "Half an answer"
        assert (taken.message.provider, taken.message.model) == ("workers-ai", "llama-3.1-8b")
        assert taken.refs == refs
        assert (taken.user_id, taken.conversation.tenant_id) == ("alice", "slack:T1")
        assert (taken.message.prompt_tokens, taken.message.completion_tokens) == (120, 14)
        assert taken.message.cost == Decimal("0.001")
        stored = await store.get_message(turn.id)
        assert stored == taken.message
        billed = await store.usage_totals(tenant_id="slack:T1", user_id="alice", since=SINCE)
        assert (billed.prompt_tokens, billed.completion_tokens, billed.count) == (120, 14, 1)
        assert billed.cost == Decimal("0.001")

    async def test_a_turn_cut_off_before_any_provider_answered_is_not_billed(
        self, store: Store, clock: FakeClock
    ) -> None:
        turns = TurnStore(store)
        await _turn(store, "p1")
        clock.advance(31)

        def bill_nothing(turn: StoredMessage) -> tuple[int, int, Decimal | None]:
            assert turn.provider is None
            return 0, 0, None

        (taken,) = await turns.recover(bill_nothing)
        assert taken.refs == () and taken.message.content == ""
        billed = await store.usage_totals(tenant_id="slack:T1", user_id=None, since=SINCE)
        assert billed.count == 0

    async def test_finishing_stores_and_bills_at_once_only_while_the_turn_is_ours(
        self, store: Store, clock: FakeClock
    ) -> None:
        turns = TurnStore(store)
        mine, lost = await _turn(store, "p1"), await _turn(store, "p1")
        usage = UsageEntry("slack:T1", "u1", "chat", "workers-ai", "llama-3.1-8b", 120, 7,
                           Decimal("0.002"), mine.conversation_id, mine.id)  # fmt: skip
        assert await turns.finish(mine.id, "p1", _result("All of it."), usage)
        done = await store.get_message(mine.id)
        assert done is not None and (done.status, done.content) == ("complete", "All of it.")
        assert not await turns.finish(mine.id, "p1", _result("again"), usage)  # ended already
        clock.advance(31)  # p1 stalled: another process takes `lost` over
        assert [t.message.id for t in await turns.recover(flat_bill)] == [lost.id]
        assert not await turns.finish(lost.id, "p1", _result("late"), usage)
        after = await store.get_message(lost.id)
        assert after is not None and after.status == "interrupted"
        billed = await store.usage_totals(tenant_id="slack:T1", user_id="u1", since=SINCE)
        assert billed.count == 1  # the finished turn, once (no provider had answered `lost`)

    async def test_stop_marks_only_a_turn_a_live_process_runs_and_its_owner_finds_it(
        self, store: Store, clock: FakeClock
    ) -> None:
        turns = TurnStore(store)
        live, other, lapsed = (
            await _turn(store, "p1"),
            await _turn(store, "p1"),
            await _turn(store, "p2"),
        )
        legacy = await _turn(store, None)  # no lease: no process can be running it
        done = await _turn(store, "p1")
        assert await turns.finish(done.id, "p1", _result("Finished."), None)
        clock.advance(20)
        await turns.heartbeat("p1", LEASE)  # p2 stopped renewing: its lease runs out at 30 s
        clock.advance(15)
        assert await turns.request_stop(live.id)
        assert not await turns.request_stop(lapsed.id)  # recovery ends it, with its notice
        assert not await turns.request_stop(legacy.id)
        assert not await turns.request_stop(done.id)
        assert not await turns.request_stop(10**9)
        ids = [live.id, other.id, lapsed.id, legacy.id, done.id]
        assert await turns.marks_among(ids) == Marks([live.id])
        assert await turns.marks_among([other.id]) == Marks()
        assert await turns.marks_among([]) == Marks()
        assert await turns.finish(live.id, "p1", _result("Stopped here."), None)
        assert await turns.marks_among(ids) == Marks()  # an ended turn is no longer asked about

    async def test_an_approval_is_answerable_elsewhere_only_while_a_live_turn_waits(
        self, store: Store, clock: FakeClock
    ) -> None:
        turns = TurnStore(store)
        live, lapsed = await _turn(store, "p1"), await _turn(store, "p2")
        for turn in (live, lapsed):
            await turns.set_waiting(turn.id, True)
        clock.advance(20)
        await turns.heartbeat("p1", LEASE)
        clock.advance(15)  # p2's lease ran out
        assert await turns.waiting(live.id) and not await turns.waiting(lapsed.id)
        assert not await turns.answer(lapsed.id, True)
        assert await turns.answer(live.id, True)
        assert not await turns.answer(live.id, False)  # answered once
        assert await turns.marks_among([live.id, lapsed.id]) == Marks([], {live.id: True})
        assert await turns.take_answer(live.id)
        assert not await turns.take_answer(live.id)  # taken once
        assert await turns.marks_among([live.id]) == Marks()
        await turns.set_waiting(live.id, True)  # the turn's next call waits
        assert await turns.waiting(live.id)
        await turns.set_waiting(live.id, False)
        assert not await turns.answer(live.id, True)

    async def test_a_workspace_is_found_through_the_organization_it_belongs_to(
        self, store: Store
    ) -> None:
        orgs, other = WorkspaceOrgs(store, "slack"), WorkspaceOrgs(store, "discord")
        await orgs.remember("E1", ["T1", "T2"])
        await orgs.remember("E1", ["T2"])  # seen again: still one row
        await orgs.remember("E2", ["T3"])
        assert [await orgs.org_of(t) for t in ("T1", "T2", "T3", "T9")] == ["E1", "E1", "E2", None]
        assert await other.org_of("T1") is None  # each platform its own
        await orgs.remember("E2", ["T2"])  # a workspace moved to another organization
        assert await orgs.org_of("T2") == "E2"
        assert await orgs.forget("E2", ["T3"]) == ["T3"]  # access to T3 revoked
        assert await orgs.forget("E2") == ["T2"] and await orgs.org_of("T2") is None  # uninstall
        assert await orgs.org_of("T1") == "E1" and await orgs.forget("E9") == []

    async def test_a_rate_is_shared_by_the_live_members_of_its_budget(
        self, store: Store, clock: FakeClock
    ) -> None:
        shares, lease = RateShares(store), timedelta(seconds=6)
        assert await shares.renew("discord:abc", "p1", lease) == 1
        assert await shares.renew("discord:abc", "p2", lease) == 2
        assert await shares.renew("discord:other-bot", "p3", lease) == 1
        assert await shares.renew("discord:abc", "p1", lease) == 2  # renewed, not counted twice
        clock.advance(5)
        assert await shares.renew("discord:abc", "p1", lease) == 2
        clock.advance(2)  # p2 stopped renewing 7 s ago: its lease ran out
        assert await shares.renew("discord:abc", "p1", lease) == 1
        await shares.leave("discord:abc", "p1")
        assert await shares.renew("discord:abc", "p4", lease) == 1
        assert await shares.renew("discord:abc", "p2", lease) == 2  # back after a stall

    async def test_turns_arriving_at_once_are_admitted_up_to_the_limit_only(
        self, store: Store, clock: FakeClock
    ) -> None:
        usage = UsageStore(store)

        async def admit(user: str = "u1", tenant: str = "slack:T1") -> bool:
            return await usage.admit_turn(tenant_id=tenant, user_id=user, per_minute=3)

        admitted = await asyncio.gather(*(admit() for _ in range(10)))  # ten messages at once
        assert sum(admitted) == 3
        assert await admit("u2") and await admit("u1", "slack:T2")  # others are their own
        clock.advance(30)
        assert not await admit()
        clock.advance(31)  # the first three are over a minute old
        assert [await admit() for _ in range(4)] == [True, True, True, False]
