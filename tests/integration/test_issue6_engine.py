"""Conversations, personas, limits, moderation and metrics through a real App (in process)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio

from bot.app import App
from bot.clock import SYSTEM_CLOCK
from bot.commands import Reply
from bot.commands.usage import usage_lines
from bot.domain import ChatOptions, ChatRequest, ConversationKey
from bot.engine.admission import REFUSAL_MODERATION
from bot.engine.chat import REFUSAL_ARCHIVED
from bot.engine.conversations import ConversationError
from bot.engine.personas import PersonaError, PersonaSpec
from bot.errors import NotAllowed
from bot.ports import PlatformLimits
from tests.fakes.llm_server import (
    LLMFake,
    llama_guard_result,
    llm_fake,
    moderation_result,
    workers_stream,
)
from tests.fakes.surface import MemorySurface
from tests.support import settings_for

__all__ = ["llm_fake"]

LIMITS = PlatformLimits(max_chars=2000, min_edit_interval=0.0)
KEY = ConversationKey("discord", "g1", "chan", "thread1")
OTHER_TENANT = ConversationKey("discord", "g2", "chan", "thread1")


async def build(fake: LLMFake, **overrides: Any) -> App:
    settings = settings_for(fake, anthropic_api_key=None, **overrides)
    return await App.build(settings)


@pytest_asyncio.fixture
async def app(llm_fake: LLMFake) -> AsyncIterator[App]:
    app = await build(llm_fake)
    yield app
    await app.close()


async def ask(
    app: App, text: str, key: ConversationKey = KEY, user: str = "u1", **kw: Any
) -> tuple[Any, MemorySurface]:
    surface = MemorySurface(SYSTEM_CLOCK, LIMITS)
    persona = kw.pop("persona", None)
    request = ChatRequest(key, user, text, ChatOptions(**kw))
    return await app.engine.handle(request, surface, persona=persona), surface


def notices(surface: MemorySurface) -> list[str]:
    return [e.text for e in surface.events if e.kind == "notify"]


# -- conversations ---------------------------------------------------------------------------


async def test_history_lists_own_conversations_newest_first_in_pages(app: App) -> None:
    for i in range(3):
        await ask(app, f"question {i}", ConversationKey("discord", "g1", "chan", f"t{i}"))
    await ask(app, "someone else's", ConversationKey("discord", "g1", "chan", "tx"), user="u2")
    await ask(app, "other server", ConversationKey("discord", "g2", "chan", "ty"))
    service = app.conversations
    assert service is not None
    first = await service.history(KEY, "u1", page=1, page_size=2)
    assert [c.title for c in first.items] == ["question 2", "question 1"] and first.has_more
    assert first.items[0].message_count == 2 and first.items[0].last_message_at is not None
    second = await service.history(KEY, "u1", page=2, page_size=2)
    assert [c.title for c in second.items] == ["question 0"] and not second.has_more


async def test_an_archived_conversation_no_longer_answers_or_lists(
    app: App, llm_fake: LLMFake
) -> None:
    await ask(app, "hello")
    assert app.conversations is not None
    with pytest.raises(ConversationError):
        await app.conversations.archive(KEY, "u2")  # not the owner, not an admin
    await app.conversations.archive(KEY, "u1")
    calls = len(llm_fake.calls)
    outcome, surface = await ask(app, "still there?")
    assert outcome.status == "error" and notices(surface) == [REFUSAL_ARCHIVED]
    assert len(llm_fake.calls) == calls  # no provider call
    assert (await app.conversations.history(KEY, "u1")).items == ()


async def test_new_context_keeps_the_thread_but_forgets_earlier_turns(
    app: App, llm_fake: LLMFake
) -> None:
    await ask(app, "my name is Ada")
    assert app.conversations is not None
    assert await app.conversations.new_context(KEY, "u1") is True
    await ask(app, "what is my name?")
    sent = llm_fake.calls_to("workers")[-1].body["messages"]
    assert [m["content"] for m in sent if m["role"] == "user"] == ["what is my name?"]
    conversation = await app.store.get_conversation(KEY)
    assert conversation is not None and conversation.message_count == 4


async def test_export_renders_title_participants_and_each_turn(app: App) -> None:
    await ask(app, "Why is the sky blue?")
    assert app.conversations is not None
    export = await app.conversations.export(KEY, "u1")
    text = export.data.decode()
    assert export.name.endswith("-why-is-the-sky-blue.md")
    assert text.startswith("# Why is the sky blue?\n")
    assert "Participants: u1; assistant (llama-3.1-8b)" in text
    assert "### **u1** ·" in text and "### **assistant** (llama-3.1-8b) ·" in text
    assert "Hello from the fake" in text


async def test_nobody_reaches_another_tenants_or_users_conversation(app: App) -> None:
    await ask(app, "secret plans", user="u1")
    conversation = await app.store.get_conversation(KEY)
    assert conversation is not None and app.conversations is not None
    service = app.conversations
    # Another user in the same tenant, by id or by key.
    for attempt in (
        service.find(KEY, "u2", conversation.id),
        service.export_by_id(KEY, "u2", conversation.id),
        service.archive_by_id(KEY, "u2", conversation.id),
        service.export(KEY, "u2"),
        service.new_context(KEY, "u2"),
    ):
        with pytest.raises(ConversationError):
            await attempt
    # The same user id in another tenant, or on another platform, by id.
    for scope in (OTHER_TENANT, ConversationKey("slack", "g1", "chan", "thread1")):
        with pytest.raises(ConversationError):
            await service.find(scope, "u1", conversation.id)
        with pytest.raises(ConversationError):
            await service.export_by_id(scope, "u1", conversation.id)
        assert (await service.history(scope, "u1")).items == ()
    assert (await app.store.get_conversation(KEY)) == conversation  # nothing changed
    assert (await service.find(KEY, "u1", conversation.id)).id == conversation.id


async def test_regenerate_refuses_in_an_archived_conversation(app: App) -> None:
    outcome, _ = await ask(app, "hello")
    assert app.conversations is not None
    await app.conversations.archive(KEY, "u1")
    surface = MemorySurface(SYSTEM_CLOCK, LIMITS)
    again = await app.engine.regenerate(outcome.message_id, "u1", surface)
    assert again.status == "error" and notices(surface) == [REFUSAL_ARCHIVED]


# -- personas --------------------------------------------------------------------------------


async def test_a_persona_shapes_the_turn_and_sticks_to_the_conversation(
    app: App, llm_fake: LLMFake
) -> None:
    assert app.personas is not None
    spec = PersonaSpec("Pirate", "Talk like a pirate.", "mistral", 0.3, None, 200)
    with pytest.raises(NotAllowed):
        await app.personas.create(KEY, "u1", spec, is_admin=False)
    await app.personas.create(KEY, "admin", spec, is_admin=True)
    outcome, _ = await ask(app, "hi", persona="pirate")
    assert outcome.model == "mistral-7b"
    call = llm_fake.calls_to("workers")[-1]
    assert call.path.endswith("mistral-7b-instruct-v0.1")
    assert call.body["messages"][0] == {"role": "system", "content": "Talk like a pirate."}
    assert (call.body["temperature"], call.body["max_tokens"]) == (0.3, 200)
    await ask(app, "again")  # no persona named: the conversation keeps it
    assert llm_fake.calls_to("workers")[-1].body["messages"][0]["content"] == "Talk like a pirate."
    # Another tenant does not see it.
    outcome, surface = await ask(app, "hi", OTHER_TENANT, persona="pirate")
    assert outcome.status == "error" and "no persona named 'pirate'" in notices(surface)[0]


async def test_channel_default_persona_applies_until_one_is_chosen(
    app: App, llm_fake: LLMFake
) -> None:
    assert app.personas is not None
    await app.personas.create(KEY, "a", PersonaSpec("poet", "Answer in verse."), is_admin=True)
    await app.personas.create(KEY, "a", PersonaSpec("terse", "One word."), is_admin=True)
    with pytest.raises(NotAllowed):
        await app.personas.set_channel_default(KEY, "poet", is_admin=False)
    await app.personas.set_channel_default(KEY, "poet", is_admin=True)
    await ask(app, "hi")
    assert llm_fake.calls_to("workers")[-1].body["messages"][0]["content"] == "Answer in verse."
    await app.personas.use(KEY, "u1", "terse")
    await ask(app, "hi")
    assert llm_fake.calls_to("workers")[-1].body["messages"][0]["content"] == "One word."
    assert (await app.engine.current_model(KEY)).name == "llama-3.1-8b"


@pytest.mark.parametrize(
    ("who", "is_admin", "allowed"),
    [("u1", False, True), ("u2", False, False), ("u2", True, True), ("u1", True, True)],
)
async def test_a_conversations_persona_is_its_owners_or_an_admins_to_change(
    app: App, who: str, is_admin: bool, allowed: bool
) -> None:
    assert app.personas is not None
    await app.personas.create(KEY, "a", PersonaSpec("poet", "Answer in verse."), is_admin=True)
    await ask(app, "hi", user="u1")  # u1 owns the conversation at KEY
    if allowed:
        assert (await app.personas.use(KEY, who, "poet", is_admin=is_admin)) is not None
    else:
        with pytest.raises(PersonaError, match="Only the person who started"):
            await app.personas.use(KEY, who, "poet", is_admin=is_admin)
        with pytest.raises(PersonaError, match="Only the person who started"):  # reveals nothing
            await app.personas.use(KEY, who, "no-such-persona", is_admin=is_admin)
    conversation = await app.store.get_conversation(KEY)
    assert conversation is not None and (conversation.persona == "poet") is allowed


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"temperature": 2.5}, "temperature must be between 0 and 2"),
        ({"top_p": 1.5}, "top_p must be between 0 and 1"),
        ({"max_tokens": 10**6}, "max_tokens must be between 1 and"),
        ({"name": "no spaces"}, "is not a persona name"),
        ({"model": "nonexistent-model"}, "unknown model"),
        ({"system_prompt": "  "}, "needs a system prompt"),
    ],
)
async def test_persona_parameters_are_validated_against_the_model(
    app: App, changes: dict[str, Any], message: str
) -> None:
    assert app.personas is not None
    fields: dict[str, Any] = {"name": "p", "system_prompt": "x"} | changes
    with pytest.raises(PersonaError, match=message):
        await app.personas.create(KEY, "a", PersonaSpec(**fields), is_admin=True)


async def test_request_parameters_out_of_range_are_refused_before_the_provider(
    app: App, llm_fake: LLMFake
) -> None:
    outcome, surface = await ask(app, "hi", temperature=3.0)
    assert (
        outcome.status == "error" and "temperature must be between 0 and 2" in notices(surface)[0]
    )
    assert llm_fake.calls == []


# -- safety and limits -----------------------------------------------------------------------


async def test_prompt_validation_refuses_empty_long_and_over_context(
    llm_fake: LLMFake,
) -> None:
    app = await build(llm_fake, max_prompt_chars=50)
    try:
        assert "Say something" in notices((await ask(app, "   "))[1])[0]
        assert "the limit is 50" in notices((await ask(app, "x" * 51))[1])[0]
    finally:
        await app.close()
    app = await build(llm_fake)
    try:
        outcome, surface = await ask(app, "word " * 6000, model="mistral")  # 8k context
        assert outcome.status == "error" and "too long for this model" in notices(surface)[0]
        assert await app.store.get_conversation(KEY) is not None
        conversation = await app.store.get_conversation(KEY)
        assert conversation is not None and conversation.message_count == 0  # nothing stored
    finally:
        await app.close()
    assert llm_fake.calls == []


async def test_messages_per_minute_limit_refuses_before_any_provider_call(
    llm_fake: LLMFake,
) -> None:
    app = await build(llm_fake, chat_messages_per_minute=2)
    try:
        await ask(app, "one")
        await ask(app, "two")
        outcome, surface = await ask(app, "three")
        assert outcome.status == "error" and "2 messages a minute" in notices(surface)[0]
        await ask(app, "other user", user="u2")
        assert len(llm_fake.calls_to("workers")) == 3
    finally:
        await app.close()


async def test_tokens_per_day_limit_refuses_once_spent(llm_fake: LLMFake) -> None:
    app = await build(llm_fake, chat_tokens_per_day=50)
    llm_fake.queue("workers", workers_stream(["ok"], usage=(40, 20)))
    try:
        await ask(app, "one")
        _, surface = await ask(app, "two")
        assert "50 chat tokens for today" in notices(surface)[0]
        assert len(llm_fake.calls_to("workers")) == 1
    finally:
        await app.close()


async def regenerate(app: App, outcome: Any, user: str = "u1") -> tuple[Any, MemorySurface]:
    surface = MemorySurface(SYSTEM_CLOCK, LIMITS)
    return await app.engine.regenerate(outcome.message_id, user, surface), surface


async def test_regenerations_count_against_the_messages_per_minute_limit(
    llm_fake: LLMFake,
) -> None:
    app = await build(llm_fake, chat_messages_per_minute=2)
    try:
        first, _ = await ask(app, "one")
        again, _ = await regenerate(app, first)
        assert again.status == "complete"
        refused, surface = await regenerate(app, again)
        assert refused.status == "error" and "2 messages a minute" in notices(surface)[0]
        _, surface = await ask(app, "a new message is over the limit too")
        assert "2 messages a minute" in notices(surface)[0]
        assert len(llm_fake.calls_to("workers")) == 2
    finally:
        await app.close()


async def test_regenerate_is_refused_once_the_days_tokens_are_spent(llm_fake: LLMFake) -> None:
    app = await build(llm_fake, chat_tokens_per_day=50)
    llm_fake.queue("workers", workers_stream(["ok"], usage=(40, 20)))
    try:
        first, _ = await ask(app, "one")
        refused, surface = await regenerate(app, first)
        assert refused.status == "error" and "50 chat tokens for today" in notices(surface)[0]
        assert len(llm_fake.calls_to("workers")) == 1
    finally:
        await app.close()


async def test_regenerate_is_moderated_like_a_new_message(llm_fake: LLMFake) -> None:
    app = await build(llm_fake, moderation_model="openai:omni-moderation-latest")
    try:
        first, _ = await ask(app, "a question that passes today")
        llm_fake.queue("moderation", moderation_result(flagged=True, categories=["violence"]))
        refused, surface = await regenerate(app, first)
        assert refused.finish_reason == "moderation" and notices(surface) == [REFUSAL_MODERATION]
        assert [c.body["input"] for c in llm_fake.calls_to("moderation")] == [
            "a question that passes today"
        ] * 2
        assert len(llm_fake.calls_to("workers")) == 1  # the regeneration reached no model
    finally:
        await app.close()


async def test_openai_moderation_refusal_is_shown_recorded_and_kept_out_of_history(
    llm_fake: LLMFake,
) -> None:
    app = await build(llm_fake, moderation_model="openai:omni-moderation-latest")
    llm_fake.queue("moderation", moderation_result(flagged=True, categories=["violence"]))
    try:
        outcome, surface = await ask(app, "something violent")
        assert outcome.status == "error" and outcome.finish_reason == "moderation"
        assert notices(surface) == [REFUSAL_MODERATION]
        assert llm_fake.calls_to("workers") == []
        moderation = llm_fake.calls_to("moderation")[0]
        assert moderation.body == {"model": "omni-moderation-latest", "input": "something violent"}
        conversation = await app.store.get_conversation(KEY)
        assert conversation is not None
        user, refusal = await app.store.history(conversation.id)
        assert (refusal.status, refusal.finish_reason, refusal.parent_id) == (
            "error",
            "moderation",
            user.id,
        )
        await ask(app, "a fine question")  # passes (default: not flagged)
        sent = llm_fake.calls_to("workers")[0].body["messages"]
        assert "something violent" not in str(sent)
    finally:
        await app.close()


async def test_llama_guard_on_workers_ai_moderates(llm_fake: LLMFake) -> None:
    app = await build(llm_fake, moderation_model="workers-ai:@cf/meta/llama-guard-3-8b")
    llm_fake.queue("workers", llama_guard_result("unsafe\nS1"), llama_guard_result("safe"))
    try:
        outcome, _ = await ask(app, "bad")
        assert outcome.finish_reason == "moderation"
        outcome, _ = await ask(app, "good")
        assert outcome.status == "complete"
        paths = [c.path for c in llm_fake.calls_to("workers")]
        assert paths[0].endswith("/ai/run/@cf/meta/llama-guard-3-8b")
        assert paths[1].endswith("/ai/run/@cf/meta/llama-guard-3-8b")
    finally:
        await app.close()


async def test_moderation_outage_fails_open_or_closed_as_configured(llm_fake: LLMFake) -> None:
    from tests.fakes.llm_server import openai_error

    for closed in (False, True):
        app = await build(
            llm_fake,
            moderation_model="openai:omni-moderation-latest",
            moderation_fail_closed=closed,
        )
        llm_fake.queue("moderation", openai_error(500, "server_error", None, "boom"))
        try:
            outcome, _ = await ask(app, "hello", ConversationKey("discord", "g1", "c", str(closed)))
            assert (outcome.status == "error") is closed
        finally:
            await app.close()


# -- usage and metrics -----------------------------------------------------------------------


async def test_usage_summary_for_a_user_and_admins_view_of_the_tenant(
    app: App, llm_fake: LLMFake
) -> None:
    llm_fake.queue(
        "workers",
        workers_stream(["a"], usage=(100, 10)),
        workers_stream(["b"], usage=(200, 20)),
    )
    await ask(app, "one")
    await ask(app, "two", ConversationKey("discord", "g1", "chan", "t2"), user="u2")
    assert app.usage is not None
    mine = await app.usage.user_summary(KEY, "u1")
    assert (mine.today.tokens, mine.month.tokens) == (110, 110)
    assert [(line.provider, line.model) for line in mine.today.lines] == [
        ("workers-ai", "llama-3.1-8b")
    ]
    with pytest.raises(NotAllowed):
        await app.usage.tenant_summary(KEY, is_admin=False)
    tenant = await app.usage.tenant_summary(KEY, is_admin=True)
    assert tenant.month.tokens == 330
    assert [u.user_id for u in tenant.top_users] == ["u2", "u1"]
    text = Reply(usage_lines(tenant, "Usage")).plain()
    assert "Today: 330 tokens" in text and "1. u2: 220 tokens" in text


async def test_metrics_count_requests_tokens_edits_refusals_and_breakers(
    app: App, llm_fake: LLMFake
) -> None:
    llm_fake.queue("workers", workers_stream(["Hello", " there"], usage=(10, 5), delay=0.01))
    await ask(app, "hi")
    await ask(app, "  ")
    assert app.metrics is not None
    text = app.metrics.render().decode()
    assert 'parley_chat_requests_total{platform="discord",status="complete"} 1.0' in text
    assert 'parley_chat_refusals_total{platform="discord",reason="empty"} 1.0' in text
    assert (
        'parley_tokens_total{kind="completion",model="llama-3.1-8b",provider="workers-ai"} 5.0'
        in text
    )
    assert 'parley_platform_posts_total{platform="discord"}' in text
    assert "parley_time_to_first_token_seconds_count" in text
    assert 'parley_spend_usd_total{model="llama-3.1-8b",provider="workers-ai"}' in text
    assert 'parley_breaker_state{provider="workers-ai"} 0.0' in text
