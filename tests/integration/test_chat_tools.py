"""The generate_image tool in a chat: a quote in the thread, never a charge; top_p reaches the body.

Real store, real chat providers over HTTP against the LLM fake, the real image engine against the
image fake (which counts every provider call), memory surfaces.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest_asyncio

from bot.app import build_catalog, build_router
from bot.clock import SYSTEM_CLOCK
from bot.domain import Actor, ChatOptions, ChatRequest, ConversationKey
from bot.engine.chat import NOTICE_BAD_TOOL_CALL, ChatEngine, TurnOutcome
from bot.engine.personas import PersonaService, PersonaSpec
from bot.engine.tools import LINE_QUOTED
from bot.images.engine import ImageEngine
from bot.images.flow import handle_click
from bot.ports import PlatformLimits
from bot.store import ImageStore, Store
from tests.fakes.images.server import ImageFake
from tests.fakes.images.support import JumpClock, MemoryImageSurface, make_engine
from tests.fakes.llm_server import (
    FakeToolCall,
    LLMFake,
    anthropic_tool_stream,
    llm_fake,
    openai_tool_stream,
    workers_stream,
    workers_tool_stream,
)
from tests.fakes.surface import MemorySurface
from tests.support import settings_for

__all__ = ["llm_fake"]

LIMITS = PlatformLimits(max_chars=2000, min_edit_interval=0.01)
KEY = ConversationKey("discord", "guild1", "chan1", "thread1")
ALICE, BOB = "u-alice", "u-bob"
FOX = {"prompt": "a red fox in the snow, watercolour", "quality": "standard"}


@dataclass
class Harness:
    engine: ChatEngine
    store: Store
    fake: LLMFake
    images_fake: ImageFake
    images: ImageEngine
    personas: PersonaService

    async def ask(
        self,
        text: str,
        *,
        user: str = ALICE,
        persona: str | None = None,
        model: str | None = None,
        with_images: bool = True,
    ) -> tuple[TurnOutcome, MemorySurface, MemoryImageSurface]:
        surface = MemorySurface(SYSTEM_CLOCK, LIMITS)
        image_surface = MemoryImageSurface()
        outcome = await self.engine.handle(
            ChatRequest(KEY, user, text, ChatOptions(model=model)),
            surface,
            persona=persona,
            images=image_surface if with_images else None,
        )
        return outcome, surface, image_surface

    def chat_body(self, family: str = "workers") -> dict[str, object]:
        body = self.fake.calls_to(family)[-1].body  # type: ignore[arg-type]
        assert isinstance(body, dict)
        return body


@pytest_asyncio.fixture
async def harness(llm_fake: LLMFake) -> AsyncIterator[Harness]:
    settings = settings_for(llm_fake)
    catalog = build_catalog(settings)
    router = build_router(settings, catalog)
    clock = JumpClock()
    store = await Store.open("sqlite+aiosqlite:///:memory:", clock=clock)
    personas = PersonaService(store, catalog, default_model="llama-3.1-8b")
    async with ImageFake() as images_fake:
        images = make_engine(store, images_fake, clock)
        engine = ChatEngine(
            store,
            router,
            catalog,
            default_model="llama-3.1-8b",
            system_prompt="Be brief.",
            personas=personas,
            images=images,
        )
        yield Harness(engine, store, llm_fake, images_fake, images, personas)
        await images.router.aclose()
    await router.registry.aclose()
    await store.close()


def tool_names(body: dict[str, object]) -> list[str]:
    tools = body.get("tools") or []
    assert isinstance(tools, list)
    return [t["function"]["name"] if "function" in t else t["name"] for t in tools]


async def test_model_calling_generate_image_offers_one_quote_and_spends_nothing(
    harness: Harness,
) -> None:
    calls = [FakeToolCall("generate_image", FOX)]
    harness.fake.queue("workers", workers_tool_stream(calls, text=["Here is ", "a quote."]))
    outcome, surface, images = await harness.ask("Draw me a fox")

    assert tool_names(harness.chat_body()) == ["generate_image"]
    assert len(images.offers) == 1 and images.uploads == []
    (offer,) = images.offers
    assert offer.buttons[0].label.startswith("Generate for $")
    assert harness.images_fake.calls == []  # a tool call never reaches an image provider
    assert outcome.status == "complete" and outcome.finish_reason == "tool_calls"
    assert outcome.text == f"Here is a quote.\n\n{LINE_QUOTED}"
    assert surface.visible_text() == outcome.text

    conversation = await harness.store.get_conversation(KEY)
    assert conversation is not None
    _, assistant = await harness.store.history(conversation.id)
    assert assistant.finish_reason == "tool_calls" and assistant.status == "complete"
    assert assistant.content == outcome.text
    job = await ImageStore(harness.store).get(offer.quote_id)
    assert job is not None and job.status == "quoted" and job.user_id == ALICE
    assert (job.platform, job.tenant_id, job.thread_id) == ("discord", "discord:guild1", KEY.thread)

    # Confirming the quote is what spends, once; someone else's click does nothing, nor does
    # a click from another guild by a user with the requester's id.
    click = offer.buttons[0].custom_id
    assert (await handle_click(harness.images, click, Actor.at(KEY, BOB), images)) is not None
    elsewhere = await handle_click(harness.images, click, Actor("discord", "guild2", ALICE), images)
    assert elsewhere is not None and elsewhere.kind == "not_found"
    assert harness.images_fake.calls == []
    result = await handle_click(harness.images, click, Actor.at(KEY, ALICE), images)
    assert result is not None and result.kind == "generated"
    again = await handle_click(harness.images, click, Actor.at(KEY, ALICE), images)
    assert again is not None and again.kind != "generated"
    assert len(images.uploads) == 1
    assert len([c for c in harness.images_fake.calls if "delivery" not in c.provider]) == 1


async def test_openai_model_tool_call_with_fragmented_arguments_quotes_once(
    harness: Harness,
) -> None:
    harness.fake.queue("openai", openai_tool_stream([FakeToolCall("generate_image", FOX)]))
    outcome, surface, images = await harness.ask("A fox please", model="gpt-4o-mini")
    body = harness.chat_body("openai")
    assert tool_names(body) == ["generate_image"] and body["tool_choice"] == "auto"
    assert len(images.offers) == 1 and harness.images_fake.calls == []
    assert outcome.text == LINE_QUOTED and outcome.finish_reason == "tool_calls"
    assert surface.visible_text() == LINE_QUOTED


async def test_anthropic_model_tool_call_quotes_once(harness: Harness) -> None:
    calls = [FakeToolCall("generate_image", FOX), FakeToolCall("generate_image", FOX)]
    harness.fake.queue("anthropic", anthropic_tool_stream(calls, text=["Sure."]))
    outcome, _, images = await harness.ask("Two foxes", model="claude-haiku-4-5")
    assert tool_names(harness.chat_body("anthropic")) == ["generate_image"]
    assert len(images.offers) == 1  # one quote per reply
    assert harness.images_fake.calls == []
    assert outcome.text.startswith("Sure.\n\n" + LINE_QUOTED)
    assert "one image quote per reply" in outcome.text


async def test_refused_quote_becomes_a_short_notice(harness: Harness) -> None:
    calls = [FakeToolCall("generate_image", {"prompt": "   "})]
    harness.fake.queue("workers", workers_tool_stream(calls))
    outcome, _, images = await harness.ask("Draw nothing")
    assert images.offers == [] and harness.images_fake.calls == []
    assert outcome.text.startswith("_(no image quote: ") and outcome.finish_reason == "tool_calls"


async def test_unknown_tool_and_malformed_calls_are_ignored_with_a_notice(
    harness: Harness,
) -> None:
    harness.fake.queue(
        "workers",
        workers_tool_stream([FakeToolCall("weather", {"city": "Oslo"})], text=["Hmm."]),
        workers_tool_stream(
            [FakeToolCall("generate_image", '{"prompt": ')], openai_shaped=True, text=["Ok"]
        ),
    )
    first, _, images = await harness.ask("Weather?")
    assert "weather" in first.text and "ignored" in first.text and images.offers == []
    second, _, images = await harness.ask("Fox?")
    assert second.text == f"Ok\n\n{NOTICE_BAD_TOOL_CALL}" and images.offers == []
    assert second.finish_reason == "tool_calls"


async def test_persona_without_the_tool_sends_no_tools(harness: Harness) -> None:
    spec = PersonaSpec("plain", "You are plain.", top_p=0.8)
    await harness.personas.create(KEY, ALICE, spec, is_admin=True)
    await harness.ask("Hello", persona="plain")
    body = harness.chat_body()
    assert "tools" not in body
    assert body["top_p"] == 0.8  # the persona's top_p reaches the request


async def test_persona_allowing_the_tool_sends_it(harness: Harness) -> None:
    spec = PersonaSpec("artist", "You draw.", tools=("generate_image",))
    await harness.personas.create(KEY, ALICE, spec, is_admin=True)
    await harness.ask("Hello", persona="artist")
    body = harness.chat_body()
    assert tool_names(body) == ["generate_image"] and "top_p" not in body


async def test_model_without_tools_capability_gets_no_tools(harness: Harness) -> None:
    harness.fake.queue("workers", workers_stream(["Hi"]))
    await harness.ask("Hello", model="mistral-7b")
    assert "tools" not in harness.chat_body()


async def test_no_image_surface_means_no_tools(harness: Harness) -> None:
    await harness.ask("Hello", with_images=False)
    assert "tools" not in harness.chat_body()


async def test_regenerate_offers_the_tool_again_with_an_image_surface(harness: Harness) -> None:
    outcome, _, _ = await harness.ask("Hello")
    assert outcome.message_id is not None
    calls = [FakeToolCall("generate_image", FOX)]
    harness.fake.queue("workers", workers_tool_stream(calls))
    images = MemoryImageSurface()
    again = await harness.engine.regenerate(
        outcome.message_id, ALICE, MemorySurface(SYSTEM_CLOCK, LIMITS), images=images
    )
    assert tool_names(harness.chat_body()) == ["generate_image"]
    assert again.finish_reason == "tool_calls" and len(images.offers) == 1
    assert harness.images_fake.calls == []
