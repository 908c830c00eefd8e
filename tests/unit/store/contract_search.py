"""Store contract for `/search` (issue 17): words found, ranked and isolated, on every backend.

Mixed into StoreContract, so it runs on SQLite (file and memory) and PostgreSQL. Isolation is
tested by attack: the words are everywhere (another user's turns in the searcher's own thread,
the same user in another tenant, another platform, an archived conversation) and only the
searcher's own messages, and the answers to them, in their own conversations here come back.
"""

from __future__ import annotations

from decimal import Decimal

import pytest
from sqlalchemy import delete

from bot.domain import ConversationKey
from bot.store import SearchStore, Store, TurnResult
from bot.store.search_repo import MARK, UNMARK, terms
from bot.store.tables import conversations

HERE = ConversationKey("discord", "g1", "c1", "t1")
WORDS = "the zephyr login broke again"


def done(content: str) -> TurnResult:
    return TurnResult(
        content=content, status="complete", finish_reason="stop", model="m", provider="p",
        prompt_tokens=1, completion_tokens=1, cost=Decimal(0), ttft_ms=1, duration_ms=1,
    )  # fmt: skip


async def said(store: Store, key: ConversationKey, user: str, text: str) -> int:
    conversation = await store.ensure_conversation(key, user, "t")
    return (await store.add_message(conversation.id, "user", text, user_id=user)).id


async def found(store: Store, user: str, words: str, tenant: str = "discord:g1") -> list[int]:
    hits = await SearchStore(store).search(tenant_id=tenant, user_id=user, words=terms(words))
    return [hit.message_id for hit in hits]


class SearchContract:
    async def test_search_finds_stemmed_words_with_marked_snippets_and_skips_streaming_turns(
        self, store: Store
    ) -> None:
        conversation = await store.ensure_conversation(HERE, "alice", "Logins")
        asked = await store.add_message(
            conversation.id, "user", "Why do my logins fail?", user_id="alice"
        )
        answer = await store.add_message(
            conversation.id, "assistant", "", status="streaming", user_id="alice"
        )
        assert await found(store, "alice", "login") == [asked.id]  # a running turn: not yet
        await store.finish_message(answer.id, done("Your login token expired; log in again."))
        assert set(await found(store, "alice", "LOGIN")) == {asked.id, answer.id}
        assert await found(store, "alice", "login token") == [answer.id]  # every word
        assert await found(store, "alice", "login zebra") == []
        [hit] = await SearchStore(store).search(
            tenant_id="discord:g1", user_id="alice", words=terms("expired")
        )
        assert hit.snippet == f"Your login token {MARK}expired{UNMARK}; log in again."
        assert (hit.role, hit.title) == ("assistant", "Logins")
        assert hit.conversation_id == conversation.id
        assert (hit.channel_id, hit.thread_id) == ("c1", "t1")

    async def test_search_ranks_the_closer_match_first(self, store: Store) -> None:
        loose = await said(store, HERE, "alice", "login " + "filler words here " * 30)
        tight = await said(store, HERE, "alice", "login login")
        assert await found(store, "alice", "login") == [tight, loose]

    async def test_search_returns_only_the_searchers_own_messages_here(self, store: Store) -> None:
        mine = await said(store, HERE, "alice", WORDS)
        await said(store, HERE, "bob", WORDS)  # bob in alice's thread
        await said(store, ConversationKey("discord", "g1", "c1", "t2"), "bob", WORDS)
        await said(store, ConversationKey("discord", "g2", "c1", "t1"), "alice", WORDS)
        await said(store, ConversationKey("slack", "g1", "c1", "t1"), "alice", WORDS)
        archived_key = ConversationKey("discord", "g1", "c2", "t9")
        await said(store, archived_key, "alice", WORDS)
        archived = await store.get_conversation(archived_key)
        assert archived is not None
        await store.set_archived(archived.id, True)
        assert await found(store, "alice", "zephyr") == [mine]
        bobs = await found(store, "bob", "zephyr")
        assert mine not in bobs and len(bobs) == 1  # his own thread only, not alice's
        assert len(await found(store, "alice", "zephyr", tenant="discord:g2")) == 1
        assert len(await found(store, "alice", "zephyr", tenant="slack:g1")) == 1
        assert await found(store, "mallory", "zephyr") == []
        assert await found(store, 'alice" OR user_id:"bob', "zephyr") == []

    @pytest.mark.parametrize(
        "typed",
        ['zephyr"', "NEAR(zephyr login)", "zephyr*", "-zephyr", "user_id:bob zephyr",
         "zephyr AND", "'zephyr'", "(zephyr", "content:zephyr", "zephyr & login | !x", "^zephyr"],
    )  # fmt: skip
    async def test_query_syntax_typed_by_a_user_is_only_words(
        self, store: Store, typed: str
    ) -> None:
        mine = await said(store, HERE, "alice", WORDS + " near and content")
        await said(store, HERE, "bob", WORDS + " near and content")
        hits = await found(store, "alice", typed)
        assert hits in ([mine], [])  # words or nothing; never an error, never bob's
        assert await found(store, "alice", typed.replace("bob", "")) in ([mine], [])

    async def test_deleted_and_edited_messages_leave_the_index(self, store: Store) -> None:
        conversation = await store.ensure_conversation(HERE, "alice", "t")
        answer = await store.add_message(
            conversation.id, "assistant", "", status="streaming", user_id="alice"
        )
        await store.finish_message(answer.id, done("first draft mentions quokka"))
        assert await found(store, "alice", "quokka") == [answer.id]
        await store.finish_message(answer.id, done("second draft mentions wombat"))
        assert await found(store, "alice", "quokka") == []
        assert await found(store, "alice", "wombat") == [answer.id]
        async with store._transaction(write=True) as conn:  # no Store method deletes yet
            await conn.execute(delete(conversations).where(conversations.c.id == conversation.id))
        assert await found(store, "alice", "wombat") == []
