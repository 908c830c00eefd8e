"""Store contract for personas, channel defaults, the `/new` marker and usage reports (issue 6).

Mixed into StoreContract, so it runs on every backend (SQLite file and memory, PostgreSQL).
"""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest

from bot.domain import ConversationKey
from bot.store import (
    ConversationStore,
    DuplicatePersona,
    PersonaFields,
    PersonaStore,
    Store,
    UsageStore,
)
from tests.unit.store.conftest import FakeClock

G1 = ConversationKey("discord", "g1", "c1", "t1")
G2 = ConversationKey("discord", "g2", "c1", "t1")


class ConversationsContract:
    async def test_personas_are_created_listed_updated_and_deleted_per_tenant(
        self, store: Store, clock: FakeClock
    ) -> None:
        personas = PersonaStore(store)
        fields = PersonaFields("You are a pirate.", "llama-3.1-8b", 0.7, 0.9, 300, ("image",))
        created = await personas.create(G1, "pirate", fields, created_by="admin1")
        assert (created.tenant_id, created.name, created.tools) == (
            "discord:g1",
            "pirate",
            ("image",),
        )
        assert (created.temperature, created.top_p, created.max_tokens) == (0.7, 0.9, 300)
        with pytest.raises(DuplicatePersona):
            await personas.create(G1, "pirate", fields, created_by="admin1")
        await personas.create(G2, "pirate", PersonaFields("Arr."), created_by="other")
        assert [p.system_prompt for p in await personas.list("discord:g1")] == ["You are a pirate."]
        clock.advance(5)
        updated = await personas.update("discord:g1", "pirate", PersonaFields("Be a calm pirate."))
        assert updated is not None and updated.system_prompt == "Be a calm pirate."
        assert updated.model is None and updated.updated_at > created.updated_at
        assert await personas.update("discord:g1", "nobody", PersonaFields("x")) is None
        assert await personas.delete("discord:g1", "pirate") is True
        assert await personas.delete("discord:g1", "pirate") is False
        assert await personas.get("discord:g1", "pirate") is None
        other = await personas.get("discord:g2", "pirate")
        assert other is not None and other.system_prompt == "Arr."

    async def test_channel_default_persona_is_set_and_cleared(self, store: Store) -> None:
        personas = PersonaStore(store)
        assert await personas.channel_default("discord:g1", "c1") is None
        await personas.set_channel_default(G1, "pirate")
        await personas.set_channel_default(G1, "poet")
        assert await personas.channel_default("discord:g1", "c1") == "poet"
        assert await personas.channel_default("discord:g2", "c1") is None
        await personas.set_channel_default(G1, None)
        assert await personas.channel_default("discord:g1", "c1") is None

    async def test_conversation_persona_replaces_its_model_choice(self, store: Store) -> None:
        conversation = await store.ensure_conversation(G1, "u1", "hi")
        await store.set_conversation_model(conversation.id, "mistral-7b")
        await PersonaStore(store).set_conversation_persona(conversation.id, "pirate")
        again = await store.get_conversation(G1)
        assert again is not None and (again.persona, again.model) == ("pirate", None)

    async def test_new_context_marks_the_newest_message(self, store: Store) -> None:
        conversation = await store.ensure_conversation(G1, "u1", "hi")
        conversations = ConversationStore(store)
        assert await conversations.start_new_context(conversation.id) is None
        await store.add_message(conversation.id, "user", "one", user_id="u1")
        last = await store.add_message(conversation.id, "assistant", "two")
        assert await conversations.start_new_context(conversation.id) == last.id
        again = await store.get_conversation(G1)
        assert again is not None and again.context_start_id == last.id

    async def test_usage_breakdown_top_users_and_limits_stay_in_their_tenant(
        self, store: Store, clock: FakeClock
    ) -> None:
        usage = UsageStore(store)
        start = clock.wall()

        async def spend(
            tenant: str, user: str, kind: str, model: str, tokens: int, cost: str
        ) -> None:
            await store.record_usage(
                tenant_id=tenant,
                user_id=user,
                kind=kind,  # type: ignore[arg-type]
                provider="workers-ai" if kind == "chat" else "openai",
                model=model,
                prompt_tokens=tokens,
                completion_tokens=tokens,
                cost=Decimal(cost),
            )

        await spend("discord:g1", "u1", "chat", "llama", 10, "0.001")
        await spend("discord:g1", "u1", "chat", "llama", 20, "0.002")
        await spend("discord:g1", "u1", "image", "gpt-image-1", 0, "0.04")
        await spend("discord:g1", "u2", "chat", "llama", 100, "0.01")
        await spend("discord:g2", "u1", "chat", "llama", 1000, "1")
        lines = await usage.breakdown(tenant_id="discord:g1", user_id="u1", since=start)
        assert [(line.kind, line.model, line.tokens, line.cost, line.count) for line in lines] == [
            ("image", "gpt-image-1", 0, Decimal("0.04"), 1),
            ("chat", "llama", 60, Decimal("0.003"), 2),
        ]
        top = await usage.top_users(tenant_id="discord:g1", since=start)
        assert [(u.user_id, u.tokens, u.cost) for u in top] == [
            ("u1", 60, Decimal("0.043")),
            ("u2", 200, Decimal("0.01")),
        ]
        assert await usage.chat_tokens(tenant_id="discord:g1", user_id="u1", since=start) == 60
        later = start + timedelta(seconds=1)
        assert await usage.breakdown(tenant_id="discord:g1", user_id=None, since=later) == []

    async def test_turns_asked_counts_one_users_answers_in_one_tenant(
        self, store: Store, clock: FakeClock
    ) -> None:
        """Answers asked for (new messages and regenerations), not user rows."""
        usage = UsageStore(store)
        here = await store.ensure_conversation(G1, "u1", "hi")
        there = await store.ensure_conversation(G2, "u1", "hi")
        await store.add_message(here.id, "assistant", "old", user_id="u1")
        clock.advance(120)
        since = clock.wall() - timedelta(minutes=1)
        question = await store.add_message(here.id, "user", "a", user_id="u1")
        for answer in ("b", "b again"):  # an answer and its regeneration
            await store.add_message(
                here.id, "assistant", answer, user_id="u1", parent_id=question.id
            )
        await store.add_message(here.id, "assistant", "c", user_id="u2")
        await store.add_message(there.id, "assistant", "d", user_id="u1")
        assert await usage.turns_asked(tenant_id="discord:g1", user_id="u1", since=since) == 2
