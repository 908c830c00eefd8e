"""Helpers for provider tests: build a call, run a stream to its end or to its error."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pytest

from bot.llm.types import (
    ChatCall,
    ChatChunk,
    ChatProvider,
    FinishReason,
    Message,
    ProviderError,
    Usage,
)

MESSAGES = (Message("system", "Be brief."), Message("user", "Say hello"))


def chat_call(
    model: str = "test-model",
    *,
    messages: Sequence[Message] = MESSAGES,
    max_tokens: int = 64,
    temperature: float | None = None,
    extra: dict[str, object] | None = None,
) -> ChatCall:
    return ChatCall(model, messages, max_tokens, temperature, extra or {})


@dataclass
class Reply:
    chunks: list[ChatChunk]

    @property
    def text(self) -> str:
        return "".join(c.text for c in self.chunks)

    @property
    def finish(self) -> FinishReason | None:
        return self.chunks[-1].finish_reason

    @property
    def usage(self) -> Usage | None:
        return self.chunks[-1].usage


async def run(provider: ChatProvider, call: ChatCall | None = None) -> Reply:
    """Stream to the end; the contract says only the last chunk carries the finish reason."""
    chunks = [c async for c in provider.stream(call or chat_call())]
    assert chunks, "a clean stream ends with a finish chunk"
    assert all(c.finish_reason is None for c in chunks[:-1])
    assert chunks[-1].finish_reason is not None
    return Reply(chunks)


async def fail(provider: ChatProvider, call: ChatCall | None = None) -> tuple[ProviderError, str]:
    """Stream until it raises; return the error and the text seen before it."""
    text = ""
    try:
        async for chunk in provider.stream(call or chat_call()):
            text += chunk.text
    except ProviderError as exc:
        assert exc.provider, "every escaping error names its provider"
        return exc, text
    pytest.fail(f"the stream ended without an error (text {text!r})")
