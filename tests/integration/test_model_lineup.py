"""Every model in the shipped catalog answers through its provider's real wire format, against
the LLM fake: the right endpoint, the model's own id, the catalog's limits."""

from __future__ import annotations

import pytest

from bot.app import build_catalog, build_router
from bot.catalog import Catalog
from bot.llm.types import Message
from tests.fakes.llm_server import LLMFake, llm_fake

__all__ = ["llm_fake"]  # the fixture
from tests.support import settings_for

FAMILY = {"workers-ai": "workers", "anthropic": "anthropic"}
PATHS = {
    "openai": "/openai/v1/chat/completions",
    "gemini": "/gemini/v1beta/openai/chat/completions",
    "xai": "/xai/v1/chat/completions",
}


@pytest.mark.parametrize("name", Catalog.load().names())
async def test_each_catalog_model_streams_through_its_provider(
    llm_fake: LLMFake, name: str
) -> None:
    settings = settings_for(llm_fake)
    catalog = build_catalog(settings)
    entry = catalog.resolve(name)
    router = build_router(settings, catalog)
    try:
        chunks = [c async for c in router.stream(entry, [Message("user", "Hi")])]
    finally:
        await router.registry.aclose()
    assert "".join(c.text for c in chunks) == "Hello from the fake"
    family = FAMILY.get(entry.provider, "openai")
    [call] = llm_fake.calls_to(family)  # type: ignore[arg-type]
    if family == "workers":
        assert call.params["model"] == entry.model_id
    elif family == "anthropic":
        assert call.body["model"] == entry.model_id
    else:
        assert (call.path, call.body["model"]) == (PATHS[entry.provider], entry.model_id)
    assert call.body["max_tokens"] == entry.default_max_tokens
