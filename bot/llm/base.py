"""The stream loop shared by the HTTP chat providers: send, read events, finish or fail.

A provider subclass says only how to build its request and what one event means; this loop owns the
client, error stamping (`provider`, `after_output`), transport errors and truncation.
"""

from __future__ import annotations

import functools
import ssl
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Iterable
from contextlib import aclosing
from dataclasses import dataclass, field
from typing import Any

import httpx

from bot.llm.errors import classifier_for, transport_error
from bot.llm.reasoning import ThinkSplitter
from bot.llm.sse import JsonEvents
from bot.llm.tools import ToolCallAssembler
from bot.llm.transport import streaming_client
from bot.llm.types import (
    ChatCall,
    ChatChunk,
    FinishReason,
    ProviderError,
    StreamTruncated,
    Usage,
)
from bot.text import StreamText

DEFAULT_TIMEOUT = httpx.Timeout(connect=5, read=60, write=10, pool=5)
"""`read` is the longest silent gap allowed inside a stream (providers.md §9.3)."""
DEFAULT_LIMITS = httpx.Limits(max_connections=1000, max_keepalive_connections=200)
"""Every streaming reply holds a connection for its whole length: httpx's default of 100 would make
the 101st concurrent reply wait, then fail (bench/stream.py at 1,000 conversations)."""

_NO_USAGE = Usage()


@dataclass(slots=True)
class StreamState:
    """What one call has seen so far; providers update it from their events."""

    max_tokens: int
    usage: Usage = _NO_USAGE
    finish: FinishReason | None = None
    terminated: bool = False
    """A terminator ([DONE], message_stop) was seen: the stream ended cleanly."""
    output: bool = False
    """Some visible text was yielded."""
    reasoning: str = ""
    """Reasoning read from the current event, handed out with its chunk."""
    thinking: bool = False
    """The current event says the model reasons without showing it (a redacted block)."""
    tools: ToolCallAssembler = field(default_factory=ToolCallAssembler)
    """Tool calls seen so far, handed out whole on the last chunk."""
    _usage_changed: bool = field(default=False, repr=False)

    def add_usage(self, usage: Usage | None) -> None:
        merged = self.usage.merge(usage)
        if merged != self.usage:
            self.usage = merged
            self._usage_changed = True

    def take_usage(self) -> Usage | None:
        """The merged usage if it grew since the last call, else None."""
        if not self._usage_changed:
            return None
        self._usage_changed = False
        return self.usage


class SSEChatProvider(ABC):
    """A ChatProvider speaking JSON over POST with a server-sent-event reply."""

    name: str

    def __init__(
        self, name: str, client: httpx.AsyncClient | None, secrets: Iterable[str | None]
    ) -> None:
        self.name = name
        self._owns_client = client is None
        self._client = client or streaming_client(
            timeout=DEFAULT_TIMEOUT, limits=DEFAULT_LIMITS, verify=_tls()
        )
        self._classify = classifier_for(name, secrets)

    @abstractmethod
    def _request(self, call: ChatCall) -> tuple[str, dict[str, str], dict[str, Any]]:
        """(url, headers, JSON body) for one call."""

    @abstractmethod
    def _on_event(self, event: str, obj: dict[str, Any], state: StreamState) -> str:
        """Read one event into `state`; return its visible text ("" for none)."""

    async def stream(self, call: ChatCall) -> AsyncIterator[ChatChunk]:
        url, headers, body = self._request(call)
        state = StreamState(max_tokens=call.max_tokens)
        pieces = StreamText()  # an emoji may come as two surrogates in two events
        thoughts = StreamText()
        inline = ThinkSplitter(inside=call.thinks_inline)
        opened = False
        try:
            async with self._client.stream("POST", url, json=body, headers=headers) as response:
                opened = True
                events = JsonEvents(response, self._classify)
                async with aclosing(aiter(events)) as items:
                    async for event, obj in items:
                        text, thought = inline.feed(pieces.feed(self._on_event(event, obj, state)))
                        if chunk := _chunk(state, text, thoughts.feed(state.reasoning) + thought):
                            yield chunk
                        if state.terminated:
                            break
                state.terminated = state.terminated or events.done
        except ProviderError as exc:
            self._stamp(exc, state)
            raise
        except (httpx.RequestError, httpx.InvalidURL) as exc:
            # A finish reason means the answer was complete; only trailing usage/[DONE] was lost.
            if state.finish is None:
                error = transport_error(exc, provider=self.name, streaming=opened)
                raise self._stamp(error, state) from exc
        text, thought = inline.feed(pieces.flush())
        last_text, last_thought = inline.flush()
        if chunk := _chunk(state, text + last_text, thoughts.flush() + thought + last_thought):
            yield chunk
        finish = self._finish_reason(state)
        calls = state.tools.finish(self.name) if state.tools else ()
        if state.tools and finish is FinishReason.STOP:
            # Workers AI native streams name no reason; the model asked for tools (maybe malformed).
            finish = FinishReason.TOOL_CALLS
        yield ChatChunk(finish_reason=finish, usage=_known(state.usage), tool_calls=calls)

    async def aclose(self) -> None:
        if self._owns_client:
            await self._client.aclose()

    def _finish_reason(self, state: StreamState) -> FinishReason:
        if state.finish is not None:
            return state.finish
        if not state.terminated:
            raise StreamTruncated(
                "the reply stream ended early", provider=self.name, after_output=state.output
            )
        completion = state.usage.completion_tokens
        if completion is not None and completion >= state.max_tokens:
            return FinishReason.LENGTH
        return FinishReason.STOP

    def _stamp(self, exc: ProviderError, state: StreamState) -> ProviderError:
        exc.provider = exc.provider or self.name
        exc.after_output = exc.after_output or state.output
        return exc


def _chunk(state: StreamState, text: str, reasoning: str) -> ChatChunk | None:
    """The chunk for what one event showed (text, reasoning, a sign of thinking), if anything."""
    thinking, state.thinking, state.reasoning = state.thinking, False, ""
    if not text and not reasoning and not thinking:
        return None
    if text:
        state.output = True
        return ChatChunk(text=text, reasoning=reasoning, usage=state.take_usage())
    return ChatChunk(reasoning=reasoning, thinking=True)


@functools.cache
def _tls() -> ssl.SSLContext:
    """One TLS context for every provider's client: building one costs ~20 ms."""
    return httpx.create_ssl_context()


def read_usage(value: object, prompt_keys: tuple[str, ...], completion_key: str) -> Usage | None:
    """Usage from a provider's usage object; prompt tokens are the sum of `prompt_keys` present."""
    if not isinstance(value, dict):
        return None
    prompt_parts = [_count(value.get(key)) for key in prompt_keys]
    known = [n for n in prompt_parts if n is not None]
    prompt = sum(known) if known else None
    completion = _count(value.get(completion_key))
    if prompt is None and completion is None:
        return None
    return Usage(prompt_tokens=prompt, completion_tokens=completion)


def _count(value: object) -> int | None:
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        return None
    return int(value)


def _known(usage: Usage) -> Usage | None:
    return None if usage == _NO_USAGE else usage
