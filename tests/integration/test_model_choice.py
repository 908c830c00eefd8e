"""Who may choose which model, decided once in ChatEngine for every platform: a channel's model
needs an admin, a thread's or a DM's conversation its owner (or an admin); on chat platforms a
model without a price is refused unless ALLOW_UNPRICED_MODELS, while the console and the
operator's DEFAULT_MODEL may be unpriced."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import pytest_asyncio

from bot.app import build_catalog, build_router
from bot.catalog import ModelNotAllowed, UnpricedModel
from bot.clock import SYSTEM_CLOCK
from bot.domain import ChatRequest, ConversationKey
from bot.engine.chat import REFUSAL_CHANNEL_MODEL, REFUSAL_CONVERSATION_MODEL, ChatEngine
from bot.llm.router import LLMRouter
from bot.ports import PlatformLimits
from bot.store import Store
from tests.fakes.llm_server import LLMFake, llm_fake, workers_stream
from tests.fakes.surface import MemorySurface
from tests.support import settings_for

__all__ = ["llm_fake"]

CHANNEL = ConversationKey("slack", "T1", "C1")
THREAD = ConversationKey("slack", "T1", "C1", "1700000000.000100")
DM = ConversationKey("slack", "T1", "D1")
RAW = "workers-ai:@cf/meta/llama-3.2-1b-instruct"


def surface() -> MemorySurface:
    return MemorySurface(SYSTEM_CLOCK, PlatformLimits(max_chars=2000, min_edit_interval=0.01))


@pytest_asyncio.fixture
async def parts(llm_fake: LLMFake) -> AsyncIterator[tuple[Store, LLMRouter]]:
    settings = settings_for(llm_fake)
    router = build_router(settings, build_catalog(settings))
    store = await Store.open("sqlite+aiosqlite:///:memory:")
    yield store, router
    await router.registry.aclose()
    await store.close()


def engine(parts: tuple[Store, LLMRouter], default: str = "llama-3.1-8b") -> ChatEngine:
    store, router = parts
    return ChatEngine(store, router, router.catalog, default_model=default, system_prompt=None)


async def test_a_channels_model_needs_an_admin_and_a_threads_its_owner(
    parts: tuple[Store, LLMRouter],
) -> None:
    chat = engine(parts)
    with pytest.raises(ModelNotAllowed) as refused:
        await chat.set_model(CHANNEL, "u1", "gpt-4o-mini")
    assert str(refused.value) == REFUSAL_CHANNEL_MODEL
    assert await parts[0].get_conversation(CHANNEL) is None  # nothing was created
    assert (await chat.set_model(CHANNEL, "admin", "gpt-4o-mini", is_admin=True)).name == (
        "gpt-4o-mini"
    )
    assert (await chat.set_model(DM, "u1", "mistral", dm=True)).name == "mistral-7b"

    await chat.set_model(THREAD, "u1", "mistral")  # a new thread: u1 now owns it
    with pytest.raises(ModelNotAllowed) as not_owner:
        await chat.set_model(THREAD, "u2", "gpt-4o-mini")
    assert str(not_owner.value) == REFUSAL_CONVERSATION_MODEL
    await chat.set_model(THREAD, "admin", None, is_admin=True)  # an admin may, back to default
    assert (await chat.current_model(THREAD)).name == "llama-3.1-8b"


async def test_unpriced_models_are_refused_on_chat_platforms_only(
    parts: tuple[Store, LLMRouter], llm_fake: LLMFake
) -> None:
    chat = engine(parts)
    with pytest.raises(UnpricedModel, match="ALLOW_UNPRICED_MODELS=true"):
        await chat.set_model(THREAD, "u1", RAW)
    console = ConversationKey("console", "local", "me", "main")
    assert (await chat.set_model(console, "me", RAW)).price is None

    # A conversation pinned to it before the operator turned it off: its turns are refused.
    store = parts[0]
    pinned = await store.ensure_conversation(THREAD, "u1", "t")
    await store.set_conversation_model(pinned.id, RAW)
    shown = surface()
    outcome = await chat.handle(ChatRequest(THREAD, "u1", "hello"), shown)
    assert outcome.status == "error" and "ALLOW_UNPRICED_MODELS" in shown.notices[0]
    assert not llm_fake.calls


async def test_an_unpriced_default_model_is_the_operators_choice(
    parts: tuple[Store, LLMRouter], llm_fake: LLMFake
) -> None:
    chat = engine(parts, default=RAW)
    llm_fake.queue("workers", workers_stream(["From the default."]))
    outcome = await chat.handle(ChatRequest(THREAD, "u1", "hello"), surface())
    assert (outcome.status, outcome.text, outcome.model) == ("complete", "From the default.", RAW)
