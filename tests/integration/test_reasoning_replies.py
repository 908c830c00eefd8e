"""A reasoning model's reply through the engine: thinking shown while it has no text, only the
answer stored, the reasoning folded under the answer when the setting or the persona asks."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest
import pytest_asyncio

from bot.app import build_catalog, build_router
from bot.clock import SYSTEM_CLOCK
from bot.domain import ChatOptions, ChatRequest, ConversationKey
from bot.engine.chat import ChatEngine
from bot.engine.personas import PersonaService, PersonaSpec
from bot.ports import PlatformLimits
from bot.store import Store
from tests.fakes.llm_server import LLMFake, StreamScript, llm_fake, raw_stream, sse
from tests.fakes.surface import MemorySurface
from tests.support import settings_for

__all__ = ["llm_fake"]

LIMITS = PlatformLimits(max_chars=2000, min_edit_interval=0.01)
KEY = ConversationKey("discord", "guild1", "chan1", "thread1")


def reasoning_reply(thoughts: list[str], answer: list[str], *, delay: float = 0.0) -> StreamScript:
    events = [sse({"choices": [{"index": 0, "delta": {"reasoning_content": t}}]}) for t in thoughts]
    events += [sse({"response": a}) for a in answer]
    usage = {"prompt_tokens": 20, "completion_tokens": 30}
    return raw_stream(*events, sse({"response": "", "usage": usage}), sse("[DONE]"), delay=delay)


@dataclass
class Harness:
    engine: ChatEngine
    personas: PersonaService
    store: Store
    fake: LLMFake

    async def ask(self, text: str, **options: object) -> tuple[object, MemorySurface]:
        surface = MemorySurface(SYSTEM_CLOCK, LIMITS)
        request = ChatRequest(KEY, "u1", text, ChatOptions(**options))  # type: ignore[arg-type]
        return await self.engine.handle(request, surface), surface


async def make(fake: LLMFake, show_reasoning: str) -> tuple[Harness, object]:
    settings = settings_for(fake, openai_api_key=None, anthropic_api_key=None)
    catalog = build_catalog(settings)
    router = build_router(settings, catalog)
    store = await Store.open(settings.database_url)
    personas = PersonaService(store, catalog, default_model="llama-3.1-8b")
    engine = ChatEngine(
        store, router, catalog, default_model="llama-3.1-8b", system_prompt="Be brief.",
        personas=personas, show_reasoning=show_reasoning,
    )  # fmt: skip
    return Harness(engine, personas, store, fake), router


@pytest_asyncio.fixture
async def harness(llm_fake: LLMFake) -> AsyncIterator[Harness]:
    made, router = await make(llm_fake, "off")
    yield made
    await router.registry.aclose()  # type: ignore[attr-defined]
    await made.store.close()


async def test_thinking_shows_then_only_the_answer_is_shown_and_stored(harness: Harness) -> None:
    harness.fake.queue(
        "workers", reasoning_reply(["Add ", "two and two."], ["It is ", "4."], delay=0.6)
    )
    _, surface = await harness.ask("2+2?")
    assert surface.visible_text() == "It is 4."
    first = surface.messages[0].history[0]
    assert first == "_thinking… 0 s_"  # before the first text, with Stop
    assert [c.action for c in surface.events[0].controls] == ["stop"]
    conversation = await harness.store.get_conversation(KEY)
    assert conversation is not None
    _, assistant = await harness.store.history(conversation.id)
    assert assistant.content == "It is 4."  # reasoning never enters history
    assert "Add" not in "".join(e.text for e in surface.events)


async def test_a_reply_that_only_reasons_says_so(harness: Harness) -> None:
    harness.fake.queue("workers", reasoning_reply(["Hmm, hmm."], []))
    _, surface = await harness.ask("Think only")
    assert surface.visible_text() == "_(The model thought it over but gave no answer.)_"


@pytest.mark.parametrize("where", ["setting", "persona"])
async def test_summary_folds_the_reasoning_under_the_answer(llm_fake: LLMFake, where: str) -> None:
    made, router = await make(llm_fake, "summary" if where == "setting" else "off")
    try:
        if where == "persona":
            spec = PersonaSpec("thinker", "Think aloud.", show_reasoning="summary")
            await made.personas.create(KEY, "admin", spec, is_admin=True)
            await made.personas.use(KEY, "u1", "thinker")
        llm_fake.queue("workers", reasoning_reply(["First,\n\nadd.", " Then check."], ["4."]))
        _, surface = await made.ask("2+2?")
        assert surface.visible_text() == "4.\n\n[Reasoning: First, add. Then check.]"
        conversation = await made.store.get_conversation(KEY)
        assert conversation is not None
        _, assistant = await made.store.history(conversation.id)
        assert assistant.content == "4."
        # Off for a persona that says off, whatever the setting.
        if where == "setting":
            spec = PersonaSpec("quiet", "Be quiet.", show_reasoning="off")
            await made.personas.create(KEY, "admin", spec, is_admin=True)
            await made.personas.use(KEY, "u1", "quiet")
            llm_fake.queue("workers", reasoning_reply(["secret plan"], ["Done."]))
            _, quiet = await made.ask("again")
            assert quiet.visible_text() == "Done."
    finally:
        await router.registry.aclose()  # type: ignore[attr-defined]
        await made.store.close()
