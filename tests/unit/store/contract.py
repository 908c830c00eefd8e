"""What every Store backend must do. Subclassed per backend (SQLite memory/file, PostgreSQL).

A subclass provides the fixtures `store` (a migrated Store on a fresh database, driven by the
`clock` fixture) and `second_store` (another Store on the same database, like a second replica).
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect, text
from sqlalchemy.exc import IntegrityError, StatementError

from bot.domain import ConversationKey
from bot.store import NotFoundError, Store, TurnResult
from bot.store.engine import create_engine
from bot.store.migrate import alembic_config, head_revision
from bot.store.tables import is_search_object, metadata
from tests.unit.store.conftest import FakeClock
from tests.unit.store.contract_conversations import ConversationsContract
from tests.unit.store.contract_search import SearchContract
from tests.unit.store.contract_turns import TurnsContract

KEY = ConversationKey(platform="discord", tenant="g1", channel="c1", thread="t1")
TABLES = {
    "tenants",
    "conversations",
    "messages",
    "usage_ledger",
    "platform_messages",
    "processed_events",
    "image_jobs",
    "breakers",
    "personas",
    "channel_settings",
    "rate_shares",
    "chat_admissions",
    "workspace_orgs",
    "alembic_version",
}


def result(**overrides: Any) -> TurnResult:
    fields: dict[str, Any] = {
        "content": "the answer",
        "status": "complete",
        "finish_reason": "stop",
        "model": "gpt-test",
        "provider": "openai",
        "prompt_tokens": 12,
        "completion_tokens": 34,
        "cost": Decimal("0.000004500"),
        "ttft_ms": 250,
        "duration_ms": 1800,
    }
    fields.update(overrides)
    return TurnResult(**fields)


async def schema_diff(url: str) -> list[Any]:
    """Differences between the migrated database at `url` and tables.metadata (empty = none)."""
    engine = create_engine(url)
    try:
        async with engine.connect() as conn:
            return await conn.run_sync(
                lambda sync: compare_metadata(
                    MigrationContext.configure(
                        sync,
                        opts={
                            "compare_type": True,
                            "include_name": lambda name, *_: not is_search_object(name),
                        },
                    ),
                    metadata,
                )
            )
    finally:
        await engine.dispose()


async def table_names(url: str, *, search: bool = False) -> set[str]:
    """The tables at `url`; with `search`, also the search index's (FTS5's, on SQLite)."""
    engine = create_engine(url)
    try:
        async with engine.connect() as conn:
            names = await conn.run_sync(lambda sync: inspect(sync).get_table_names())
        return {name for name in names if search or not is_search_object(name)}
    finally:
        await engine.dispose()


async def counting_follows_its_migration(url: str) -> None:
    """The trigger that keeps message_count (0005) comes and goes with its migration."""

    async def count_after_one_more(store: Store, conversation_id: int) -> int:
        await store.add_message(conversation_id, "user", "one more")
        found = await store.get_conversation_by_id(conversation_id)
        assert found is not None
        return found.message_count

    async def migrate_to(revision: str) -> None:
        engine = create_engine(url)
        async with engine.begin() as conn:
            await conn.run_sync(lambda sync: command.downgrade(alembic_config(sync), revision))
        await engine.dispose()

    async with await Store.open(url) as store:
        conversation = await store.ensure_conversation(KEY, "u1", "hello")
        assert await count_after_one_more(store, conversation.id) == 1
    await migrate_to("0004")
    # The Store's statements name columns added after 0004, so insert as 0004's code did.
    engine = create_engine(url)
    async with engine.begin() as conn:
        await conn.execute(
            text(
                "INSERT INTO messages (conversation_id, role, content, status, created_at,"
                " updated_at) VALUES (:c, 'user', 'one more', 'complete', :t, :t)"
            ),
            {"c": conversation.id, "t": datetime.now(UTC).replace(tzinfo=None)},
        )
        count = (
            await conn.execute(
                text("SELECT message_count FROM conversations WHERE id = :c"),
                {"c": conversation.id},
            )
        ).scalar()
    await engine.dispose()
    assert count == 1  # nothing counts it now
    async with await Store.open(url) as store:  # back to head
        assert await count_after_one_more(store, conversation.id) == 2


class StoreContract(ConversationsContract, SearchContract, TurnsContract):
    # -- schema -------------------------------------------------------------------------------

    async def test_open_migrates_to_head(self, store: Store) -> None:
        assert await store.current_revision() == head_revision()

    async def test_upgrading_again_is_a_no_op(self, store: Store) -> None:
        conversation = await store.ensure_conversation(KEY, "u1", "hello")
        await store.upgrade()
        await store.upgrade()
        assert await store.current_revision() == head_revision()
        assert await store.get_conversation_by_id(conversation.id) == conversation

    async def test_ping_is_true_when_the_database_answers(self, store: Store) -> None:
        assert await store.ping() is True

    async def test_invalid_status_is_refused_by_the_check_constraint(self, store: Store) -> None:
        conversation = await store.ensure_conversation(KEY, "u1", "hello")
        with pytest.raises(IntegrityError):
            await store.add_message(conversation.id, "user", "hi", status="bogus")  # type: ignore[arg-type]

    # -- conversations ------------------------------------------------------------------------

    async def test_ensure_conversation_creates_then_returns_the_same_row(
        self, store: Store, clock: FakeClock
    ) -> None:
        created = await store.ensure_conversation(KEY, "u1", "How do I bake bread?")
        clock.advance(60)
        again = await store.ensure_conversation(KEY, "u2", "another title")
        assert again == created
        assert created.platform == "discord"
        assert created.tenant_id == "discord:g1"
        assert (created.channel_id, created.thread_id) == ("c1", "t1")
        assert created.user_id == "u1"
        assert created.title == "How do I bake bread?"
        assert (created.model, created.persona, created.message_count) == (None, None, 0)
        assert created.last_message_at is None
        assert created.archived is False
        assert created.created_at == clock.wall() - timedelta(seconds=60)
        assert created.created_at.tzinfo is not None
        assert created.created_at.utcoffset() == timedelta(0)

    async def test_title_is_one_line_of_at_most_100_characters(self, store: Store) -> None:
        conversation = await store.ensure_conversation(
            KEY, "u1", "line one\n\tline two " + "x" * 200
        )
        assert "\n" not in conversation.title
        assert conversation.title.startswith("line one line two xx")
        assert len(conversation.title) == 100

    async def test_get_conversation_by_key_and_by_id(self, store: Store) -> None:
        created = await store.ensure_conversation(KEY, "u1", "hello")
        assert await store.get_conversation(KEY) == created
        assert await store.get_conversation_by_id(created.id) == created
        assert await store.get_conversation(ConversationKey("discord", "g1", "c1", "other")) is None
        assert await store.get_conversation_by_id(created.id + 1000) is None

    async def test_channel_and_its_threads_are_separate_conversations(self, store: Store) -> None:
        channel = await store.ensure_conversation(ConversationKey("slack", "T1", "C1"), "u", "a")
        thread = await store.ensure_conversation(
            ConversationKey("slack", "T1", "C1", "1.2"), "u", "b"
        )
        assert channel.id != thread.id
        assert channel.thread_id == ""

    async def test_same_external_tenant_on_two_platforms_does_not_collide(
        self, store: Store
    ) -> None:
        discord = await store.ensure_conversation(ConversationKey("discord", "1", "c"), "u", "a")
        slack = await store.ensure_conversation(ConversationKey("slack", "1", "c"), "u", "b")
        assert discord.id != slack.id
        assert (discord.tenant_id, slack.tenant_id) == ("discord:1", "slack:1")

    async def test_concurrent_ensure_conversation_for_one_key_yields_one_row(
        self, store: Store
    ) -> None:
        results = await asyncio.gather(
            *(store.ensure_conversation(KEY, f"u{i}", f"title {i}") for i in range(8))
        )
        assert len({conversation.id for conversation in results}) == 1
        listed = await store.list_conversations(
            platform="discord", tenant_id="discord:g1", user_id=None
        )
        assert [c.id for c in listed] == [results[0].id]

    async def test_concurrent_ensure_conversation_from_two_stores_yields_one_row(
        self, store: Store, second_store: Store
    ) -> None:
        results = await asyncio.gather(
            *(
                (store if i % 2 else second_store).ensure_conversation(KEY, f"u{i}", "t")
                for i in range(8)
            )
        )
        assert len({conversation.id for conversation in results}) == 1

    async def test_set_conversation_model_round_trips_and_none_clears_it(
        self, store: Store
    ) -> None:
        conversation = await store.ensure_conversation(KEY, "u1", "hello")
        await store.set_conversation_model(conversation.id, "claude-test")
        pinned = await store.get_conversation_by_id(conversation.id)
        assert pinned is not None and pinned.model == "claude-test"
        await store.set_conversation_model(conversation.id, None)
        cleared = await store.get_conversation_by_id(conversation.id)
        assert cleared is not None and cleared.model is None

    async def test_archived_conversations_are_listed_only_when_asked(self, store: Store) -> None:
        kept = await store.ensure_conversation(KEY, "u1", "kept")
        archived = await store.ensure_conversation(
            ConversationKey("discord", "g1", "c1", "t2"), "u1", "archived"
        )
        await store.set_archived(archived.id, True)
        stored = await store.get_conversation_by_id(archived.id)
        assert stored is not None and stored.archived is True

        def listing(include: bool) -> Any:
            return store.list_conversations(
                platform="discord", tenant_id="discord:g1", user_id="u1", include_archived=include
            )

        assert [c.id for c in await listing(False)] == [kept.id]
        assert {c.id for c in await listing(True)} == {kept.id, archived.id}
        await store.set_archived(archived.id, False)
        assert {c.id for c in await listing(False)} == {kept.id, archived.id}

    async def test_updating_a_missing_conversation_raises_not_found(self, store: Store) -> None:
        with pytest.raises(NotFoundError):
            await store.set_conversation_model(4242, "m")
        with pytest.raises(NotFoundError):
            await store.set_archived(4242, True)
        with pytest.raises(NotFoundError):
            await store.add_message(4242, "user", "hi")
        conversation = await store.ensure_conversation(KEY, "u1", "hello")
        with pytest.raises(NotFoundError, match="no message 4242"):
            await store.add_message(conversation.id, "user", "hi", parent_id=4242)

    async def test_list_conversations_is_newest_first_and_pages(
        self, store: Store, clock: FakeClock
    ) -> None:
        ids = []
        for n in range(5):
            conversation = await store.ensure_conversation(
                ConversationKey("discord", "g1", "c1", f"t{n}"), "u1", f"chat {n}"
            )
            ids.append(conversation.id)
        for conversation_id in ids:  # t4 gets the newest message
            clock.advance(1)
            await store.add_message(conversation_id, "user", "hi", user_id="u1")
        clock.advance(1)
        await store.add_message(ids[1], "user", "bump", user_id="u1")  # t1 becomes the newest

        def page(offset: int) -> Any:
            return store.list_conversations(
                platform="discord", tenant_id="discord:g1", user_id="u1", limit=2, offset=offset
            )

        pages = [[c.id for c in await page(offset)] for offset in (0, 2, 4, 6)]
        assert pages == [[ids[1], ids[4]], [ids[3], ids[2]], [ids[0]], []]

    async def test_list_conversations_is_isolated_by_tenant_platform_and_user(
        self, store: Store
    ) -> None:
        mine = await store.ensure_conversation(ConversationKey("discord", "g1", "c"), "u1", "a")
        await store.ensure_conversation(ConversationKey("discord", "g2", "c"), "u1", "other guild")
        await store.ensure_conversation(ConversationKey("slack", "g1", "c"), "u1", "other platform")
        theirs = await store.ensure_conversation(ConversationKey("discord", "g1", "d"), "u2", "b")

        def listing(user_id: str | None) -> Any:
            return store.list_conversations(
                platform="discord", tenant_id="discord:g1", user_id=user_id
            )

        assert [c.id for c in await listing("u1")] == [mine.id]
        assert {c.id for c in await listing(None)} == {mine.id, theirs.id}
        assert (
            await store.list_conversations(platform="slack", tenant_id="discord:g1", user_id="u1")
            == []
        )

    # -- messages -----------------------------------------------------------------------------

    async def test_add_message_round_trips_every_field(
        self, store: Store, clock: FakeClock
    ) -> None:
        conversation = await store.ensure_conversation(KEY, "u1", "hello")
        added = await store.add_message(
            conversation.id,
            "assistant",
            "partial",
            status="streaming",
            user_id="u1",
            model="gpt-test",
            provider="openai",
        )
        assert await store.get_message(added.id) == added
        assert added.conversation_id == conversation.id
        assert (added.role, added.content, added.status) == ("assistant", "partial", "streaming")
        assert (added.user_id, added.model, added.provider) == ("u1", "gpt-test", "openai")
        assert added.parent_id is None
        assert added.finish_reason is None
        assert (added.prompt_tokens, added.completion_tokens, added.cost) == (None, None, None)
        assert (added.ttft_ms, added.duration_ms) == (None, None)
        assert added.created_at == clock.wall()
        assert await store.get_message(added.id + 1000) is None

    async def test_add_message_maintains_message_count_and_last_message_at(
        self, store: Store, clock: FakeClock
    ) -> None:
        conversation = await store.ensure_conversation(KEY, "u1", "hello")
        clock.advance(5)
        await store.add_message(conversation.id, "user", "one", user_id="u1")
        clock.advance(5)
        await store.add_message(conversation.id, "assistant", "two")
        after = await store.get_conversation_by_id(conversation.id)
        assert after is not None
        assert after.message_count == 2
        assert after.last_message_at == clock.wall()

    async def test_concurrent_add_message_counts_every_message(self, store: Store) -> None:
        conversation = await store.ensure_conversation(KEY, "u1", "hello")
        await asyncio.gather(
            *(store.add_message(conversation.id, "user", f"m{i}") for i in range(10))
        )
        after = await store.get_conversation_by_id(conversation.id)
        assert after is not None and after.message_count == 10
        assert len(await store.history(conversation.id)) == 10

    async def test_finish_message_writes_the_turn_result(
        self, store: Store, clock: FakeClock
    ) -> None:
        conversation = await store.ensure_conversation(KEY, "u1", "hello")
        streaming = await store.add_message(
            conversation.id, "assistant", "", status="streaming", model="m0", provider="p0"
        )
        clock.advance(2)
        finished = await store.finish_message(streaming.id, result())
        assert finished == await store.get_message(streaming.id)
        assert (finished.content, finished.status, finished.finish_reason) == (
            "the answer",
            "complete",
            "stop",
        )
        assert (finished.model, finished.provider) == ("gpt-test", "openai")
        assert (finished.prompt_tokens, finished.completion_tokens) == (12, 34)
        assert finished.cost == Decimal("0.000004500")
        assert (finished.ttft_ms, finished.duration_ms) == (250, 1800)
        assert finished.created_at == streaming.created_at

    async def test_finish_message_keeps_model_and_provider_the_result_does_not_name(
        self, store: Store
    ) -> None:
        conversation = await store.ensure_conversation(KEY, "u1", "hello")
        streaming = await store.add_message(
            conversation.id, "assistant", "", status="streaming", model="m0", provider="p0"
        )
        finished = await store.finish_message(
            streaming.id,
            result(status="error", finish_reason=None, model=None, provider=None, cost=None),
        )
        assert (finished.model, finished.provider) == ("m0", "p0")
        assert (finished.status, finished.finish_reason, finished.cost) == ("error", None, None)

    async def test_finishing_a_missing_message_raises_not_found(self, store: Store) -> None:
        with pytest.raises(NotFoundError):
            await store.finish_message(4242, result())

    @pytest.mark.parametrize(
        "cost",
        ["0.000004500", "0", "0.000000001", "12.345678901", "99999999.999999999", "-0.25"],
    )
    async def test_cost_round_trips_exactly(self, store: Store, cost: str) -> None:
        conversation = await store.ensure_conversation(KEY, "u1", "hello")
        message = await store.add_message(conversation.id, "assistant", "", status="streaming")
        await store.finish_message(message.id, result(cost=Decimal(cost)))
        stored = await store.get_message(message.id)
        assert stored is not None and stored.cost == Decimal(cost)

    @pytest.mark.parametrize(
        ("cost", "stored"),
        [("0.0000000005", "0"), ("0.0000000015", "0.000000002"), ("0.0000000025", "0.000000002")],
    )
    async def test_cost_is_rounded_half_even_at_the_ninth_decimal(
        self, store: Store, cost: str, stored: str
    ) -> None:
        conversation = await store.ensure_conversation(KEY, "u1", "hello")
        message = await store.add_message(conversation.id, "assistant", "", status="streaming")
        finished = await store.finish_message(message.id, result(cost=Decimal(cost)))
        assert finished.cost == Decimal(stored)

    async def test_regenerations_are_siblings_sharing_the_user_turn(self, store: Store) -> None:
        conversation = await store.ensure_conversation(KEY, "u1", "hello")
        question = await store.add_message(conversation.id, "user", "why?", user_id="u1")
        first = await store.add_message(
            conversation.id, "assistant", "because", parent_id=question.id
        )
        second = await store.add_message(
            conversation.id, "assistant", "well, because", parent_id=question.id
        )
        assert first.parent_id == second.parent_id == question.id
        history = await store.history(conversation.id)
        assert [m.id for m in history] == [question.id, first.id, second.id]
        assert [m.parent_id for m in history] == [None, question.id, question.id]

    async def test_history_returns_the_newest_n_oldest_first(self, store: Store) -> None:
        conversation = await store.ensure_conversation(KEY, "u1", "hello")
        other = await store.ensure_conversation(
            ConversationKey("discord", "g1", "c1", "t9"), "u1", "other"
        )
        for n in range(7):
            await store.add_message(conversation.id, "user" if n % 2 else "assistant", f"m{n}")
            await store.add_message(other.id, "user", f"other {n}")
        newest = await store.history(conversation.id, limit=3)
        assert [m.content for m in newest] == ["m4", "m5", "m6"]
        everything = await store.history(conversation.id)
        assert [m.content for m in everything] == [f"m{n}" for n in range(7)]
        assert await store.history(4242) == []

    # -- usage --------------------------------------------------------------------------------

    async def test_usage_totals_sum_the_ledger_since_a_moment(
        self, store: Store, clock: FakeClock
    ) -> None:
        conversation = await store.ensure_conversation(KEY, "u1", "hello")
        message = await store.add_message(conversation.id, "assistant", "hi")

        async def spend(user: str, cost: str | None, tenant: str = "discord:g1") -> None:
            await store.record_usage(
                tenant_id=tenant,
                user_id=user,
                kind="chat",
                provider="openai",
                model="gpt-test",
                prompt_tokens=10,
                completion_tokens=5,
                cost=None if cost is None else Decimal(cost),
                conversation_id=conversation.id,
                message_id=message.id,
            )

        await spend("u1", "1.000000001")  # before the window
        clock.advance(3600)
        since = clock.wall()
        await spend("u1", "0.000004500")
        await spend("u1", None)  # unknown price: counted, costs nothing
        await spend("u2", "0.25")
        await spend("u1", "7", tenant="discord:g2")
        await store.record_usage(
            tenant_id="discord:g1",
            user_id="u1",
            kind="image",
            provider="replicate",
            model="flux",
            prompt_tokens=0,
            completion_tokens=0,
            cost=Decimal("0.04"),
        )

        mine = await store.usage_totals(tenant_id="discord:g1", user_id="u1", since=since)
        assert (mine.prompt_tokens, mine.completion_tokens, mine.count) == (20, 10, 3)
        assert mine.cost == Decimal("0.040004500")
        tenant = await store.usage_totals(tenant_id="discord:g1", user_id=None, since=since)
        assert (tenant.count, tenant.cost) == (4, Decimal("0.290004500"))
        ever = await store.usage_totals(
            tenant_id="discord:g1", user_id="u1", since=since - timedelta(days=1)
        )
        assert (ever.count, ever.cost) == (4, Decimal("1.040004501"))

    async def test_usage_totals_of_nothing_are_zero(self, store: Store) -> None:
        totals = await store.usage_totals(
            tenant_id="discord:none", user_id="u1", since=datetime(2000, 1, 1, tzinfo=UTC)
        )
        assert (totals.prompt_tokens, totals.completion_tokens, totals.count) == (0, 0, 0)
        assert totals.cost == Decimal(0)

    async def test_naive_datetimes_are_refused(self, store: Store) -> None:
        with pytest.raises(StatementError, match="naive datetime"):
            await store.usage_totals(tenant_id="t", user_id=None, since=datetime(2026, 1, 1))

    async def test_aware_datetimes_in_other_zones_compare_as_utc(
        self, store: Store, clock: FakeClock
    ) -> None:
        await store.record_usage(
            tenant_id="t",
            user_id="u",
            kind="chat",
            provider="p",
            model="m",
            prompt_tokens=1,
            completion_tokens=1,
            cost=None,
        )
        plus_two = timezone(timedelta(hours=2))
        just_after = (clock.wall() + timedelta(seconds=1)).astimezone(plus_two)
        just_before = (clock.wall() - timedelta(seconds=1)).astimezone(plus_two)
        assert (await store.usage_totals(tenant_id="t", user_id=None, since=just_after)).count == 0
        assert (await store.usage_totals(tenant_id="t", user_id=None, since=just_before)).count == 1

    # -- platform message map and event dedupe (migration 0002) ------------------------------

    async def test_a_linked_platform_message_finds_its_conversation(self, store: Store) -> None:
        conversation = await store.ensure_conversation(KEY, "u1", "hello")
        turn = await store.add_message(conversation.id, "assistant", "hi")
        await store.link_platform_message(KEY, "msg-1", conversation.id, turn_id=turn.id)
        await store.link_platform_message(KEY, "msg-1", conversation.id, turn_id=turn.id)  # again
        found = await store.conversation_for_message("discord", "g1", "msg-1")
        assert found is not None and found.id == conversation.id
        assert await store.conversation_for_message("discord", "g1", "msg-2") is None
        await store.link_platform_message(KEY, ["msg-2", "msg-3", "msg-1"], conversation.id)
        for message in ("msg-2", "msg-3"):  # a reply's every message, in one go
            found = await store.conversation_for_message("discord", "g1", message)
            assert found is not None and found.id == conversation.id
        await store.link_platform_message(KEY, [], conversation.id)  # nothing shown: nothing

    async def test_message_links_do_not_cross_tenants(self, store: Store) -> None:
        conversation = await store.ensure_conversation(KEY, "u1", "hello")
        await store.link_platform_message(KEY, "msg-1", conversation.id)
        assert await store.conversation_for_message("discord", "other-guild", "msg-1") is None
        assert await store.conversation_for_message("slack", "g1", "msg-1") is None

    async def test_an_event_is_claimed_once(self, store: Store) -> None:
        assert await store.claim_event("slack", "Ev123")
        assert not await store.claim_event("slack", "Ev123")
        assert await store.claim_event("discord", "Ev123")  # ids are per platform

    async def test_replicas_racing_for_one_event_let_exactly_one_win(
        self, store: Store, second_store: Store
    ) -> None:
        claims = await asyncio.gather(
            *(s.claim_event("slack", "EvRace") for s in (store, second_store) * 5)
        )
        assert sorted(claims) == [False] * 9 + [True]

    async def test_old_event_records_are_forgotten(self, store: Store, clock: FakeClock) -> None:
        await store.claim_event("slack", "old")
        clock.advance(3600)
        await store.claim_event("slack", "new")
        cutoff = clock.wall() - timedelta(minutes=30)
        assert await store.forget_events_before(cutoff) == 1
        assert await store.claim_event("slack", "old")
        assert not await store.claim_event("slack", "new")

    async def test_forgetting_events_can_keep_to_one_platform(
        self, store: Store, clock: FakeClock
    ) -> None:
        await store.claim_event("slack", "old")
        await store.claim_event("discord", "old")
        clock.advance(3600)
        cutoff = clock.wall() - timedelta(minutes=30)
        assert await store.forget_events_before(cutoff, platform="slack") == 1
        assert await store.claim_event("slack", "old")
        assert not await store.claim_event("discord", "old")
