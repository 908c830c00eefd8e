"""ChatEngine inside one process: real store, real providers over HTTP, a memory surface."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest_asyncio

from bot.app import build_catalog, build_router
from bot.clock import SYSTEM_CLOCK
from bot.domain import ChatOptions, ChatRequest, ConversationKey
from bot.engine.chat import NOTICE_LENGTH, NOTICE_STOPPED, ChatEngine, StopResult
from bot.ports import PlatformLimits
from bot.store import Store
from tests.fakes.llm_server import (
    LLMFake,
    llm_fake,
    workers_error,
    workers_stream,
)
from tests.fakes.surface import MemorySurface
from tests.support import settings_for

__all__ = ["llm_fake"]

LIMITS = PlatformLimits(max_chars=2000, min_edit_interval=0.01)
KEY = ConversationKey("discord", "guild1", "chan1", "thread1")


@dataclass
class Harness:
    engine: ChatEngine
    store: Store
    fake: LLMFake

    def surface(self) -> MemorySurface:
        return MemorySurface(SYSTEM_CLOCK, LIMITS)

    async def ask(self, text: str, key: ConversationKey = KEY, user: str = "u1", **options):  # type: ignore[no-untyped-def]
        surface = self.surface()
        outcome = await self.engine.handle(
            ChatRequest(key, user, text, ChatOptions(**options)), surface
        )
        return outcome, surface


@pytest_asyncio.fixture
async def harness(llm_fake: LLMFake) -> AsyncIterator[Harness]:
    settings = settings_for(llm_fake, openai_api_key=None, anthropic_api_key=None)
    catalog = build_catalog(settings)
    router = build_router(settings, catalog)
    store = await Store.open(settings.database_url)
    engine = ChatEngine(
        store, router, catalog, default_model="llama-3.1-8b", system_prompt="Be brief."
    )
    yield Harness(engine, store, llm_fake)
    await router.registry.aclose()
    await store.close()


async def test_a_turn_streams_the_exact_text_and_stores_both_turns(harness: Harness) -> None:
    pieces = ["The ", "sky ", "is ", "blue ", "because ", "of ", "Rayleigh ", "scattering."]
    harness.fake.queue("workers", workers_stream(pieces, usage=(40, 8), delay=0.005))
    outcome, surface = await harness.ask("Why is the sky blue?")
    assert surface.visible_text() == "".join(pieces)
    assert outcome.status == "complete" and outcome.finish_reason == "stop"
    conversation = await harness.store.get_conversation(KEY)
    assert conversation is not None and conversation.title == "Why is the sky blue?"
    user, assistant = await harness.store.history(conversation.id)
    assert (user.role, user.content, user.user_id) == ("user", "Why is the sky blue?", "u1")
    assert (assistant.role, assistant.content, assistant.status) == (
        "assistant",
        "".join(pieces),
        "complete",
    )
    assert assistant.parent_id == user.id
    assert (assistant.prompt_tokens, assistant.completion_tokens) == (40, 8)
    assert assistant.cost is not None and assistant.cost > 0
    assert assistant.ttft_ms is not None and assistant.duration_ms is not None
    assert assistant.provider == "workers-ai" and assistant.model == "llama-3.1-8b"
    # the stop button rode along while streaming and became Regenerate at the end
    assert [c.action for c in surface.messages[-1].controls] == ["regenerate"]
    assert any(c.action == "stop" for e in surface.events for c in e.controls)
    totals = await harness.store.usage_totals(
        tenant_id="discord:guild1", user_id="u1", since=assistant.created_at.replace(year=2000)
    )
    assert (totals.prompt_tokens, totals.completion_tokens, totals.count) == (40, 8, 1)


async def test_follow_up_prompt_contains_the_earlier_turns(harness: Harness) -> None:
    harness.fake.queue("workers", workers_stream(["Paris."]), workers_stream(["About 2 million."]))
    await harness.ask("Capital of France?")
    await harness.ask("Its population?")
    second = harness.fake.calls_to("workers")[1].body["messages"]
    assert second == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Capital of France?"},
        {"role": "assistant", "content": "Paris."},
        {"role": "user", "content": "Its population?"},
    ]


async def test_conversations_are_isolated_by_key(harness: Harness) -> None:
    other = ConversationKey("discord", "guild2", "chan1", "thread1")
    harness.fake.queue("workers", workers_stream(["one"]), workers_stream(["two"]))
    await harness.ask("secret in guild1")
    await harness.ask("hello from guild2", key=other)
    second = harness.fake.calls_to("workers")[1].body["messages"]
    assert all("secret" not in m["content"] for m in second)


async def test_messages_in_one_conversation_queue_in_order(harness: Harness) -> None:
    harness.fake.queue(
        "workers",
        workers_stream(["first ", "answer"], delay=0.05),
        workers_stream(["second answer"]),
    )
    first = asyncio.create_task(harness.ask("one"))
    await asyncio.sleep(0.01)
    second = asyncio.create_task(harness.ask("two"))
    (o1, _), (o2, _) = await asyncio.gather(first, second)
    assert (o1.text, o2.text) == ("first answer", "second answer")
    calls = harness.fake.calls_to("workers")
    assert calls[1].at >= calls[0].at
    # the second request was sent after the first answer was stored, so it carries it
    assert {"role": "assistant", "content": "first answer"} in calls[1].body["messages"]


async def test_stop_keeps_the_partial_text_and_stores_the_turn_interrupted(
    harness: Harness,
) -> None:
    pieces = [f"word{i} " for i in range(200)]
    harness.fake.queue("workers", workers_stream(pieces, delay=0.01))
    task = asyncio.create_task(harness.ask("talk a lot"))
    while not harness.engine.running():  # noqa: ASYNC110 - the engine exposes no event for this
        await asyncio.sleep(0.005)
    await asyncio.sleep(0.1)
    (message_id,) = harness.engine.running()
    assert harness.engine.stop(message_id, "someone-else") is StopResult.NOT_YOURS
    assert harness.engine.stop(message_id, "u1") is StopResult.STOPPED
    outcome, surface = await task
    assert outcome.status == "interrupted" and outcome.finish_reason == "cancelled"
    assert 0 < len(outcome.text) < len("".join(pieces))
    assert surface.visible_text() == f"{outcome.text.strip()}\n\n{NOTICE_STOPPED}"
    stored = await harness.store.get_message(message_id)
    assert stored is not None and stored.status == "interrupted"
    assert stored.content == outcome.text
    assert stored.completion_tokens and stored.completion_tokens > 0  # estimated without usage
    assert harness.engine.stop(message_id, "u1") is StopResult.NOT_RUNNING


async def test_failure_after_output_keeps_partial_text_with_a_notice(harness: Harness) -> None:
    harness.fake.queue("workers", workers_stream(["half ", "an answer"], done=False).dropped())
    outcome, surface = await harness.ask("go")
    assert outcome.status == "error" and outcome.text == "half an answer"
    assert surface.visible_text().startswith("half an answer\n\n_(reply interrupted:")
    assert harness.fake.calls_to("openai") == []  # never spliced with another provider


async def test_failure_before_output_shows_a_clear_message(harness: Harness) -> None:
    harness.fake.queue("workers", workers_error(3040), workers_error(3040))
    outcome, surface = await harness.ask("go")
    assert outcome.status == "error" and outcome.text == ""
    visible = surface.visible_text()
    assert visible.startswith("Sorry, I couldn't get an answer:")
    assert "Traceback" not in visible
    assert outcome.message_id is not None
    stored = await harness.store.get_message(outcome.message_id)
    assert stored is not None and stored.status == "error"


async def test_token_limit_is_shown_to_the_user(harness: Harness) -> None:
    harness.fake.queue("workers", workers_stream(["cut"], usage=(5, 1024)))
    outcome, surface = await harness.ask("long please")
    assert outcome.finish_reason == "length"
    assert surface.visible_text() == f"cut\n\n{NOTICE_LENGTH}"


async def test_a_long_reply_with_code_arrives_whole_across_messages(harness: Harness) -> None:
    code = "\n".join(f"    print({i})" for i in range(150))
    text = "Here you go:\n\n```python\n" + code + "\n```\n\nDone."
    harness.fake.queue(
        "workers", workers_stream([text[i : i + 40] for i in range(0, len(text), 40)])
    )
    outcome, surface = await harness.ask("code please")
    assert outcome.text == text
    assert len(surface.messages) == 2
    assert all(len(m.text) <= 2000 and m.text.count("```") % 2 == 0 for m in surface.messages)
    lines = [line for m in surface.messages for line in m.text.splitlines()]
    assert [line for line in lines if "print(" in line] == code.splitlines()


async def test_regenerate_stores_a_sibling_and_the_next_turn_uses_it(harness: Harness) -> None:
    harness.fake.queue(
        "workers",
        workers_stream(["first try"]),
        workers_stream(["second try"]),
        workers_stream(["next"]),
    )
    outcome, _ = await harness.ask("question")
    assert outcome.message_id is not None
    refused = await harness.engine.regenerate(outcome.message_id, "u2", harness.surface())
    assert refused.error and "Only the person who asked" in refused.error
    again = await harness.engine.regenerate(outcome.message_id, "u1", harness.surface())
    assert again.text == "second try"
    first = await harness.store.get_message(outcome.message_id)
    second = await harness.store.get_message(again.message_id or 0)
    assert first and second and first.parent_id == second.parent_id
    await harness.ask("follow up")
    last = harness.fake.calls_to("workers")[-1].body["messages"]
    assert {"role": "assistant", "content": "second try"} in last
    assert {"role": "assistant", "content": "first try"} not in last


async def test_model_choice_per_conversation_and_clear_refusals(harness: Harness) -> None:
    entry = await harness.engine.set_model(KEY, "u1", "mistral")
    assert entry.name == "mistral-7b"
    harness.fake.queue("workers", workers_stream(["ok"]))
    await harness.ask("hi")
    assert harness.fake.calls_to("workers")[0].path.endswith("@cf/mistral/mistral-7b-instruct-v0.1")
    outcome, surface = await harness.ask("hi", model="no-such-model")
    assert outcome.status == "error" and "unknown model 'no-such-model'" in surface.notices[0]
    empty, surface = await harness.ask("   ")
    assert empty.error and surface.notices and not surface.messages
    assert len(harness.fake.calls_to("workers")) == 1


async def test_restart_marks_streaming_turns_interrupted(harness: Harness) -> None:
    conversation = await harness.store.ensure_conversation(KEY, "u1", "t")
    user = await harness.store.add_message(conversation.id, "user", "q", user_id="u1")
    orphan = await harness.store.add_message(
        conversation.id, "assistant", "", status="streaming", parent_id=user.id
    )
    recovered = await harness.engine.recover()
    assert [t.message.id for t in recovered] == [orphan.id]
    stored = await harness.store.get_message(orphan.id)
    assert stored is not None and stored.status == "interrupted"


async def test_ten_conversations_at_once_finish_exactly_and_independently(harness: Harness) -> None:
    harness.fake.respond_with(
        "workers",
        lambda call: workers_stream(
            [f"answer to {call.body['messages'][-1]['content']} ", "done"], delay=0.01
        ),
    )
    keys = [ConversationKey("discord", "g", f"chan{i}", "") for i in range(10)]
    results = await asyncio.gather(*(harness.ask(f"q{i}", key=k) for i, k in enumerate(keys)))
    for i, (outcome, surface) in enumerate(results):
        assert surface.visible_text() == f"answer to q{i} done"
        assert outcome.status == "complete"
