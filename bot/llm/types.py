"""The chat-provider contract: messages in, a stream of chunks out, and the error taxonomy."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Literal, Protocol

Role = Literal["system", "user", "assistant", "tool"]


@dataclass(frozen=True, slots=True)
class ImagePart:
    """A picture a user sent, as the model is shown it: PNG or JPEG bytes (bot/attachments.py
    has scaled it down)."""

    media_type: str
    data: bytes = field(repr=False)

    @property
    def base64(self) -> str:
        return base64.b64encode(self.data).decode("ascii")


@dataclass(frozen=True, slots=True)
class Message:
    """One message of a prompt. Within a turn that uses tools: an assistant message with the
    `tool_calls` it made, then one `tool` message per call with its result (`tool_call_id`
    says which; `is_error` that the call failed). Each protocol writes them its own way."""

    role: Role
    content: str
    tool_calls: tuple[ToolCall, ...] = ()
    tool_call_id: str = ""
    is_error: bool = False
    images: tuple[ImagePart, ...] = ()
    """A user turn's pictures, for a model that sees (`without_images` for one that doesn't)."""


def without_images(messages: Sequence[Message]) -> list[Message]:
    """The prompt for a model without vision: the pictures dropped (their names stay in the
    text, bot/attachments.with_files)."""
    return [replace(m, images=()) if m.images else m for m in messages]


@dataclass(frozen=True, slots=True)
class Usage:
    """Token counts; None where the provider did not say."""

    prompt_tokens: int | None = None
    completion_tokens: int | None = None

    def merge(self, other: Usage | None) -> Usage:
        """Combine two usage reports by taking the largest per field, never the sum.

        Providers report usage as deltas, cumulative totals or a final total; the largest value
        seen is right for all three (see docs: providers.md §5).
        """
        if other is None:
            return self
        return Usage(
            prompt_tokens=_max_opt(self.prompt_tokens, other.prompt_tokens),
            completion_tokens=_max_opt(self.completion_tokens, other.completion_tokens),
        )


def _max_opt(a: int | None, b: int | None) -> int | None:
    if a is None:
        return b
    if b is None:
        return a
    return max(a, b)


class FinishReason(StrEnum):
    STOP = "stop"
    LENGTH = "length"  # hit max_tokens: shown to the user
    TOOL_CALLS = "tool_calls"
    CONTENT_FILTER = "content_filter"
    TRUNCATED = "truncated"  # the stream ended without a terminator
    ERROR = "error"  # a provider error after visible output
    CANCELLED = "cancelled"  # the user pressed Stop


@dataclass(frozen=True, slots=True)
class ToolSpec:
    """A tool the model may call: a name, what it does, and its arguments as a JSON schema."""

    name: str
    description: str
    parameters: Mapping[str, object]


@dataclass(frozen=True, slots=True)
class ToolCall:
    """One call the model asked for, its arguments parsed (malformed ones never get this far)."""

    id: str
    name: str
    arguments: Mapping[str, object]


@dataclass(frozen=True, slots=True)
class ChatChunk:
    """One step of a stream: some visible text, and/or a finish reason, and/or usage.

    `reasoning` is what a reasoning model thinks on the way (its own field, a thinking block, or
    an inline `<think>` block taken out of the text): never part of the answer. `thinking` says
    the model is reasoning even where it shows nothing of it (Anthropic's redacted blocks).
    `tool_calls` arrive whole, on the last chunk (with finish reason TOOL_CALLS).
    """

    text: str = ""
    reasoning: str = ""
    thinking: bool = False
    finish_reason: FinishReason | None = None
    usage: Usage | None = None
    tool_calls: tuple[ToolCall, ...] = ()


@dataclass(frozen=True, slots=True)
class ChatCall:
    """One request to one provider for one model."""

    model_id: str
    messages: Sequence[Message]
    max_tokens: int
    temperature: float | None = None
    extra: dict[str, object] = field(default_factory=dict)
    top_p: float | None = None
    tools: tuple[ToolSpec, ...] = ()
    thinks_inline: bool = False
    """The model writes its reasoning into the text as `<think>…</think>`, and its reply starts
    inside that block even when the opening tag is missing (bot/llm/reasoning.py)."""


class ErrorClass(StrEnum):
    REQUEST = (
        "request"  # our request is wrong (400, 413, content policy): no retry, breaker neutral
    )
    TRANSIENT = "transient"  # 408/429/5xx, capacity, timeouts, cut streams: retry once or fall back
    QUOTA = "quota"  # out of credit / daily allocation: never retry, breaker open until reset
    CONFIG = "config"  # bad key, unknown model: never retry, breaker open long, operator must act


class ProviderError(Exception):
    """A provider call failed. `message` is safe to show: it never holds a key or a token."""

    error_class: ErrorClass = ErrorClass.TRANSIENT

    def __init__(
        self,
        message: str,
        *,
        provider: str = "",
        status: int | None = None,
        code: str | None = None,
        retry_after: float | None = None,
        reset_at: float | None = None,
        after_output: bool = False,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.provider = provider
        self.status = status
        self.code = code
        self.retry_after = retry_after
        """Seconds the provider asked us to wait (Retry-After), if it said."""
        self.reset_at = reset_at
        """Epoch seconds (UTC) when a quota resets, if known (Workers AI 3036: next 00:00 UTC)."""
        self.after_output = after_output
        """True when the failure came after visible text reached the user."""

    def __str__(self) -> str:
        where = f"{self.provider}: " if self.provider else ""
        status = f" (HTTP {self.status})" if self.status else ""
        return f"{where}{self.message}{status}"


class RequestError(ProviderError):
    error_class = ErrorClass.REQUEST


class TransientError(ProviderError):
    error_class = ErrorClass.TRANSIENT


class StreamTruncated(TransientError):
    """The stream ended (EOF) without a terminator or finish reason."""


class LocalCongestion(TransientError):
    """Our side ran out of capacity (no free connection in the pool): says nothing about the
    provider's health, so it falls back without counting against the provider's breaker."""


class QuotaError(ProviderError):
    error_class = ErrorClass.QUOTA


class ConfigError(ProviderError):
    error_class = ErrorClass.CONFIG


class ChatProvider(Protocol):
    """One wire protocol to one endpoint. Implementations live in bot/llm/<protocol>.py."""

    name: str

    def stream(self, call: ChatCall) -> AsyncIterator[ChatChunk]:
        """Stream a reply. Raises ProviderError subclasses, before or during the stream.

        Yields chunks with text as it arrives; the last chunk carries the finish reason (STOP,
        LENGTH, TOOL_CALLS, ...) and any tool calls, assembled. A stream that ends without a
        terminator raises StreamTruncated; an in-band error raises the matching ProviderError.
        Usage may ride on any chunk.
        """
        ...

    async def aclose(self) -> None: ...
