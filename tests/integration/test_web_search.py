"""Web search as a tool: the real WebSearch (httpx) against a strict Tavily fake on loopback, in a
chat turn with a real provider against the LLM fake; its failures as the model and user see them."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest_asyncio

from bot.app import build_catalog, build_router
from bot.clock import SYSTEM_CLOCK
from bot.domain import ChatOptions, ChatRequest, ConversationKey
from bot.engine.chat import ChatEngine
from bot.engine.personas import PersonaService, PersonaSpec
from bot.ports import PlatformLimits
from bot.store import Store
from bot.tools import Toolboxes
from bot.tools.search import WebSearch
from tests.fakes.llm_server import (
    FakeToolCall,
    LLMFake,
    llm_fake,
    openai_stream,
    openai_tool_stream,
)
from tests.fakes.search import KEY, SearchFake
from tests.fakes.surface import MemorySurface
from tests.support import settings_for

__all__ = ["llm_fake"]

KEY_PLACE = ConversationKey("slack", "T1", "C1", "1.000")
ALICE = "U1"


@pytest_asyncio.fixture
async def search_fake() -> AsyncIterator[SearchFake]:
    async with SearchFake() as fake:
        yield fake


async def test_results_go_to_the_model_numbered_with_links(search_fake: SearchFake) -> None:
    search = WebSearch(KEY, base_url=search_fake.base_url)
    try:
        (action,) = search.actions(None)
        result = await action.run({"query": "python 3.14"})
    finally:
        await search.aclose()
    assert not result.is_error and result.summary == "2 results"
    first, second = result.text.split("\n\n")
    assert first.splitlines()[:2] == [
        "[1] Python 3.14 released",
        "https://www.python.org/downloads/release/python-3140/",
    ]
    assert second.startswith("[2] What's new in Python 3.14\nhttps://docs.python.org/")
    (call,) = search_fake.calls
    assert call.body == {
        "query": "python 3.14", "max_results": 5, "search_depth": "basic", "topic": "general",
    }  # fmt: skip
    assert call.headers["Authorization"] == f"Bearer {KEY}"


async def test_failures_are_named_without_the_key(search_fake: SearchFake) -> None:
    wrong = WebSearch("tvly-wrong-key-999", base_url=search_fake.base_url)
    search = WebSearch(KEY, base_url=search_fake.base_url)
    try:
        (bad_key,) = wrong.actions(None)
        refused = await bad_key.run({"query": "python"})
        assert refused.is_error and refused.note == "the search provider refused the key"
        (action,) = search.actions(None)
        search_fake.fail_next(429)
        limited = await action.run({"query": "python"})
        assert limited.note == "the search provider is rate limiting us"
        search_fake.fail_next(432)
        assert (await action.run({"query": "python"})).note == "the search plan's limit is reached"
        empty = await action.run({"query": "   "})
        assert empty.is_error and "query" in empty.text
        none = await action.run({"query": "zebra opera"})
        assert not none.is_error and none.summary == "no results"
    finally:
        await wrong.aclose()
        await search.aclose()
    for result in (refused, limited, empty):
        assert "tvly-" not in result.text + result.note
    assert len(search_fake.calls) == 4  # the empty query never left


async def test_an_unreachable_provider_is_a_named_failure() -> None:
    gone = WebSearch(KEY, base_url="http://127.0.0.1:9")
    try:
        (action,) = gone.actions(None)
        result = await action.run({"query": "python"})
        assert result.is_error and result.note == "the search provider is unreachable"
    finally:
        await gone.aclose()


async def test_a_persona_offers_web_search_only_when_it_lists_it() -> None:
    search = WebSearch(KEY)
    try:
        assert [a.label for a in search.actions(("web.search",))] == ["web.search"]
        assert [a.label for a in search.actions(("web",))] == ["web.search"]
        assert search.actions(("issues.*",)) == [] and search.actions(()) == []
    finally:
        await search.aclose()


async def test_a_chat_turn_searches_then_answers_citing_links(
    llm_fake: LLMFake, search_fake: SearchFake
) -> None:
    settings = settings_for(llm_fake)
    catalog = build_catalog(settings)
    router = build_router(settings, catalog)
    store = await Store.open("sqlite+aiosqlite:///:memory:")
    search = WebSearch(KEY, base_url=search_fake.base_url)
    personas = PersonaService(store, catalog, default_model="llama-3.1-8b")
    personas.toolbox = Toolboxes(search)
    engine = ChatEngine(
        store, router, catalog, default_model="llama-3.1-8b", system_prompt=None,
        personas=personas, toolbox=search,
    )  # fmt: skip
    cited = "Python 3.14 is out ([1](https://www.python.org/downloads/release/python-3140/))."
    llm_fake.queue(
        "openai",
        openai_tool_stream([FakeToolCall("web__search", {"query": "python 3.14 release"})]),
        openai_stream([cited]),
    )
    surface = MemorySurface(SYSTEM_CLOCK, PlatformLimits(max_chars=2000, min_edit_interval=0.01))
    try:
        outcome = await engine.handle(
            ChatRequest(KEY_PLACE, ALICE, "Is Python 3.14 out?", ChatOptions(model="gpt-4o-mini")),
            surface,
        )
        await personas.create(
            KEY_PLACE,
            ALICE,
            PersonaSpec("offline", "No web.", tools=("generate_image",)),
            is_admin=True,
        )
        llm_fake.queue("openai", openai_stream(["ok"]))
        await engine.handle(
            ChatRequest(KEY_PLACE, ALICE, "hi", ChatOptions(model="gpt-4o-mini")),
            MemorySurface(SYSTEM_CLOCK),
            persona="offline",
        )
    finally:
        await search.aclose()
        await router.registry.aclose()
        await store.close()
    assert outcome.text.startswith("> 🔎 Searching the web for “python 3.14 release” … 1 result (")
    assert outcome.text.endswith(cited) and surface.visible_text() == outcome.text
    first, second, third = (c.body for c in llm_fake.calls_to("openai"))
    assert [t["function"]["name"] for t in first["tools"]] == ["web__search"]
    tool = second["messages"][-1]
    assert tool["role"] == "tool" and tool["content"].startswith("[1] Python 3.14 released\n")
    assert "tools" not in third  # the persona lists no web search
