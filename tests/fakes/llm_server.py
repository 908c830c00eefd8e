"""A strict, scriptable fake of the Workers AI, AI Gateway, OpenAI-compatible and Anthropic APIs.

An aiohttp server on 127.0.0.1 (a free port). It checks auth and bodies the way the real APIs do
(answering 401/400 in each provider's own error shape), records every call, and plays scripted
replies: a FIFO per API family ("workers", "openai", "anthropic"), then a default responder.

    async with LLMFake() as fake:                       # or the `llm_fake` fixture
        fake.queue("openai", openai_stream(["Hel", "lo"], usage=(5, 2)).split_every(3))
        fake.queue("workers", workers_error(3040))
        provider = OpenAICompatProvider("openai", fake.openai_base, fake.openai_key)
        ...
        assert fake.calls[-1].body["stream_options"] == {"include_usage": True}

Base URLs: `cloudflare_api_base` (…/client/v4), `gateway_base` (…/gateway/v1), `openai_base`
(…/openai/v1), `anthropic_base` (…/anthropic; the client appends /v1/messages). A `python -m bot`
subprocess can use them too, as long as the test's event loop keeps running while it works.
Standalone: `python -m tests.fakes.llm_server [port]` serves the default replies.

Use the fixture from a conftest: `from tests.fakes.llm_server import llm_fake` plus
`__all__ = ["llm_fake"]` (so ruff sees the import used).
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterator

import pytest_asyncio

from tests.fakes.llm.scripts import (
    SPLIT_GAP,
    WORKERS_AI_ERRORS,
    FakeToolCall,
    Piece,
    ReplyScript,
    Script,
    StreamScript,
    anthropic_error,
    anthropic_event,
    anthropic_stream,
    anthropic_tool_stream,
    openai_error,
    openai_stream,
    openai_tool_stream,
    raw_stream,
    sse,
    workers_error,
    workers_stream,
    workers_tool_stream,
)
from tests.fakes.llm.server import (
    FAMILIES,
    Call,
    Family,
    LLMFake,
    Responder,
    llama_guard_result,
    moderation_result,
)

__all__ = [
    "FAMILIES",
    "SPLIT_GAP",
    "WORKERS_AI_ERRORS",
    "Call",
    "FakeToolCall",
    "Family",
    "LLMFake",
    "Piece",
    "ReplyScript",
    "Responder",
    "Script",
    "StreamScript",
    "anthropic_error",
    "anthropic_event",
    "anthropic_stream",
    "anthropic_tool_stream",
    "llama_guard_result",
    "llm_fake",
    "moderation_result",
    "openai_error",
    "openai_stream",
    "openai_tool_stream",
    "raw_stream",
    "sse",
    "workers_error",
    "workers_stream",
    "workers_tool_stream",
]


@pytest_asyncio.fixture
async def llm_fake() -> AsyncIterator[LLMFake]:
    """A started LLMFake on 127.0.0.1, closed after the test."""
    async with LLMFake() as fake:
        yield fake


async def _serve_forever(port: int) -> None:
    fake = LLMFake(port=port)
    await fake.start()
    print(f"fake LLM APIs on {fake.url} (port {fake.port})", flush=True)
    print(f"  workers:   {fake.cloudflare_api_base}\n  gateway:   {fake.gateway_base}")
    print(f"  openai:    {fake.openai_base}\n  anthropic: {fake.anthropic_base}", flush=True)
    try:
        await asyncio.Event().wait()
    finally:
        await fake.close()


if __name__ == "__main__":
    asyncio.run(_serve_forever(int(sys.argv[1]) if len(sys.argv) > 1 else 0))
