"""Scripted replies for the fake LLM server, and builders of realistic wire streams and errors."""

from __future__ import annotations

import itertools
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from types import EllipsisType
from typing import Any

SPLIT_GAP = 1e-6
"""Seconds between re-split pieces: enough to hand the loop over, so each goes out (and is read)
as its own TCP segment."""


@dataclass(frozen=True, slots=True)
class Piece:
    """Raw bytes written in one go, after `delay` seconds."""

    data: bytes
    delay: float = 0.0


@dataclass(frozen=True, slots=True)
class StreamScript:
    """A streamed reply: raw pieces written one by one (chunked encoding), then EOF or a drop."""

    pieces: tuple[Piece, ...]
    status: int = 200
    headers: Mapping[str, str] = field(default_factory=dict)
    content_type: str = "text/event-stream; charset=utf-8"
    drop: bool = False
    """Abort the TCP connection after the last piece (no chunked terminator: a cut connection)."""
    sent: list[float] | None = field(default=None, compare=False)
    """When given, the time.monotonic() at which each piece was written is appended (benchmarks
    measure display lag from the moment each token left the provider)."""

    @property
    def raw(self) -> bytes:
        return b"".join(p.data for p in self.pieces)

    def split_every(self, size: int, gap: float = SPLIT_GAP) -> StreamScript:
        """Re-cut the raw bytes into `size`-byte pieces (splits JSON and UTF-8 sequences)."""
        raw = self.raw
        return self.split_at(*range(size, len(raw), size), gap=gap)

    def split_at(self, *offsets: int, gap: float = SPLIT_GAP) -> StreamScript:
        """Re-cut the raw bytes at these byte offsets."""
        raw = self.raw
        cuts = [0, *sorted(o for o in offsets if 0 < o < len(raw)), len(raw)]
        parts = [raw[a:b] for a, b in itertools.pairwise(cuts) if b > a]
        return replace(self, pieces=tuple(Piece(p, gap if i else 0.0) for i, p in enumerate(parts)))

    def paced(self, delay: float) -> StreamScript:
        """Wait `delay` seconds before every piece (a slow stream)."""
        return replace(self, pieces=tuple(replace(p, delay=delay) for p in self.pieces))

    def dropped(self) -> StreamScript:
        return replace(self, drop=True)

    def crlf(self) -> StreamScript:
        """Use CRLF line endings throughout."""
        return self.line_endings(b"\r\n")

    def line_endings(self, newline: bytes) -> StreamScript:
        """Replace every LF with `newline` (b"\\r\\n" or a lone b"\\r")."""
        return replace(
            self, pieces=tuple(replace(p, data=p.data.replace(b"\n", newline)) for p in self.pieces)
        )

    def then(self, *events: bytes | str, delay: float = 0.0) -> StreamScript:
        """Append raw events (e.g. an in-band error), each after `delay` seconds."""
        extra = tuple(Piece(_bytes(e), delay) for e in events)
        return replace(self, pieces=self.pieces + extra)


@dataclass(frozen=True, slots=True)
class ReplyScript:
    """A plain (non-stream) HTTP reply: an error, or a 200 JSON envelope where a stream was due."""

    status: int
    body: object  # JSON-serialisable, or bytes sent as they are
    headers: Mapping[str, str] = field(default_factory=dict)
    content_type: str = "application/json"


Script = StreamScript | ReplyScript


# --- wire builders -----------------------------------------------------------------------------


def sse(data: object, event: str | None = None) -> bytes:
    """One SSE event: `data` is a str sent verbatim or an object sent as JSON."""
    text = data if isinstance(data, str) else _json(data)
    lines = [f"event: {event}"] if event else []
    lines += [f"data: {line}" for line in text.split("\n")]
    return ("\n".join(lines) + "\n\n").encode()


def raw_stream(*events: bytes | str, delay: float = 0.0, **options: Any) -> StreamScript:
    """A stream of raw events/bytes as given; `options` are StreamScript fields."""
    return StreamScript(pieces=tuple(Piece(_bytes(e), delay) for e in events), **options)


def openai_stream(
    pieces: Sequence[str],
    *,
    finish: str | None = "stop",
    usage: tuple[int, int] | EllipsisType | None = ...,
    done: bool = True,
    model: str = "gpt-test",
    delay: float = 0.0,
    chunk_split: int | None = None,
) -> StreamScript:
    """A chat.completion.chunk stream as OpenAI sends it with include_usage (providers.md §2.1).

    `usage` defaults to (12, len(pieces)); None sends no usage chunk.
    """
    base = {"id": "chatcmpl-fake", "object": "chat.completion.chunk", "created": 1753357673}
    base["model"] = model

    def chunk(delta: dict[str, Any], finish_reason: str | None = None) -> bytes:
        choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}
        return sse({**base, "choices": [choice], "usage": None})

    events = [chunk({"role": "assistant", "content": "", "refusal": None})]
    events += [chunk({"content": p}) for p in pieces]
    if finish is not None:
        events.append(chunk({}, finish))
    counts = (12, len(pieces)) if usage is ... else usage
    if counts is not None:
        events.append(sse({**base, "choices": [], "usage": _openai_usage(*counts)}))
    if done:
        events.append(sse("[DONE]"))
    return _finish_script(events, delay, chunk_split)


def workers_stream(
    pieces: Sequence[str],
    *,
    usage: tuple[int, int] | EllipsisType | None = ...,
    done: bool = True,
    delay: float = 0.0,
    chunk_split: int | None = None,
) -> StreamScript:
    """A native Workers AI stream: `{"response", "p"}` chunks, a usage chunk, `[DONE]` (§1.4)."""
    events = [sse({"response": p, "p": "abcdefgh"[: 1 + i % 8]}) for i, p in enumerate(pieces)]
    counts = (12, len(pieces)) if usage is ... else usage
    if counts is not None:
        total = _openai_usage(*counts) | {"neurons": 0.918}
        events.append(sse({"response": "", "usage": total}))
    if done:
        events.append(sse("[DONE]"))
    return _finish_script(events, delay, chunk_split)


def anthropic_event(type_: str, **fields: Any) -> bytes:
    """One Anthropic stream event (`event:` name and `type` agree)."""
    return sse({"type": type_, **fields}, event=type_)


def anthropic_stream(
    pieces: Sequence[str],
    *,
    stop_reason: str | None = "end_turn",
    usage: tuple[int, int] = (12, 5),
    thinking: Sequence[str] = (),
    stop: bool = True,
    delay: float = 0.0,
    chunk_split: int | None = None,
) -> StreamScript:
    """A Messages API stream: message_start … message_stop, with a ping (providers.md §3)."""
    prompt, completion = usage
    events = _anthropic_opening(prompt)
    index = 0
    if thinking:
        events += _anthropic_block(index, "thinking", thinking)
        index += 1
    events += _anthropic_block(index, "text", pieces)
    if stop_reason is not None:
        end = {"stop_reason": stop_reason, "stop_sequence": None}
        events.append(
            anthropic_event("message_delta", delta=end, usage={"output_tokens": completion})
        )
    if stop:
        events.append(anthropic_event("message_stop"))
    return _finish_script(events, delay, chunk_split)


# --- tool calls -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class FakeToolCall:
    """A call the fake model makes: `arguments` as an object, or raw JSON text (maybe broken)."""

    name: str
    arguments: Mapping[str, Any] | str = field(default_factory=dict)
    id: str | None = None

    def json(self) -> str:
        return self.arguments if isinstance(self.arguments, str) else _json(self.arguments)


def _pieces_of(text: str, size: int | None) -> list[str]:
    if not size or not text:
        return [text]
    return [text[i : i + size] for i in range(0, len(text), size)]


def openai_tool_stream(
    calls: Sequence[FakeToolCall],
    *,
    text: Sequence[str] = (),
    fragment: int | None = 7,
    finish: str | None = "tool_calls",
    usage: tuple[int, int] | None = (20, 9),
    done: bool = True,
    model: str = "gpt-test",
) -> StreamScript:
    """OpenAI streaming tool calls: optional text, then per call a first delta with index, id and
    name, then its arguments in `fragment`-character pieces (providers.md §2.1)."""
    base = {"id": "chatcmpl-fake", "object": "chat.completion.chunk", "created": 1753357673}
    base["model"] = model

    def chunk(delta: dict[str, Any], finish_reason: str | None = None) -> bytes:
        choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}
        return sse({**base, "choices": [choice], "usage": None})

    events = [chunk({"role": "assistant", "content": None if not text else "", "refusal": None})]
    events += [chunk({"content": p}) for p in text]
    for index, call in enumerate(calls):
        first = {
            "index": index,
            "id": call.id or f"call_fake_{index}",
            "type": "function",
            "function": {"name": call.name, "arguments": ""},
        }
        events.append(chunk({"tool_calls": [first]}))
        for piece in _pieces_of(call.json(), fragment):
            more = {"index": index, "function": {"arguments": piece}}
            events.append(chunk({"tool_calls": [more]}))
    if finish is not None:
        events.append(chunk({}, finish))
    if usage is not None:
        events.append(sse({**base, "choices": [], "usage": _openai_usage(*usage)}))
    if done:
        events.append(sse("[DONE]"))
    return raw_stream(*events)


def workers_tool_stream(
    calls: Sequence[FakeToolCall],
    *,
    text: Sequence[str] = (),
    arguments_as: str = "object",
    openai_shaped: bool = False,
    usage: tuple[int, int] | None = (20, 9),
    done: bool = True,
) -> StreamScript:
    """Workers AI native tool calls: `{"response": "", "tool_calls": [{name, arguments}]}` on one
    chunk (§1.3), arguments as an object or (`arguments_as="string"`) JSON text; or, with
    `openai_shaped`, OpenAI-style deltas on the native path (§1.4: both shapes occur)."""
    events = [sse({"response": p, "p": "abcd"}) for p in text]
    if openai_shaped:
        for index, call in enumerate(calls):
            fn = {"name": call.name, "arguments": call.json()}
            item = {"index": index, "id": call.id or f"call_{index}", "type": "function"}
            delta = {"tool_calls": [item | {"function": fn}]}
            events.append(sse({"choices": [{"index": 0, "delta": delta}]}))
    elif calls:
        wire: list[dict[str, Any]] = []
        for call in calls:
            args: object = call.arguments
            if arguments_as == "string" or isinstance(args, str):
                args = call.json()
            wire.append({"name": call.name, "arguments": args})
        events.append(sse({"response": "", "tool_calls": wire}))
    if usage is not None:
        events.append(sse({"response": "", "usage": _openai_usage(*usage)}))
    if done:
        events.append(sse("[DONE]"))
    return raw_stream(*events)


def anthropic_tool_stream(
    calls: Sequence[FakeToolCall],
    *,
    text: Sequence[str] = (),
    fragment: int | None = 9,
    stop_reason: str | None = "tool_use",
    usage: tuple[int, int] = (20, 9),
) -> StreamScript:
    """Anthropic tool use: an optional text block, then per call a `tool_use` block start and its
    input as `input_json_delta` partial_json pieces; stop_reason tool_use (providers.md §3)."""
    prompt, completion = usage
    events = _anthropic_opening(prompt)
    index = 0
    if text:
        events += _anthropic_block(index, "text", text)
        index += 1
    for number, call in enumerate(calls):
        tool_block: dict[str, Any] = {
            "type": "tool_use",
            "id": call.id or f"toolu_fake_{number}",
            "name": call.name,
            "input": {},
        }
        events.append(anthropic_event("content_block_start", index=index, content_block=tool_block))
        for piece in _pieces_of(call.json(), fragment):
            delta = {"type": "input_json_delta", "partial_json": piece}
            events.append(anthropic_event("content_block_delta", index=index, delta=delta))
        events.append(anthropic_event("content_block_stop", index=index))
        index += 1
    if stop_reason is not None:
        end = {"stop_reason": stop_reason, "stop_sequence": None}
        events.append(
            anthropic_event("message_delta", delta=end, usage={"output_tokens": completion})
        )
    events.append(anthropic_event("message_stop"))
    return raw_stream(*events)


# Real Workers AI codes (providers.md §1.5): code -> (HTTP status, message).
WORKERS_AI_ERRORS: dict[int, tuple[int, str]] = {
    3036: (429, "Account limited: you have used up your daily free allocation of 10,000 neurons"),
    3040: (429, "Capacity temporarily exceeded, please try again."),
    3007: (408, "Request timeout"),
    3008: (408, "Request aborted"),
    5007: (400, "No such model"),
    5004: (400, "Invalid data"),
    3003: (400, "Incomplete request"),
    3006: (413, "Request is too large"),
    3042: (404, "Invalid model ID"),
    5016: (403, "Prior to using this model, you must submit the prompt 'agree'"),
    10000: (401, "Authentication error"),
}


def workers_error(
    code: int,
    status: int | None = None,
    message: str | None = None,
    *,
    headers: Mapping[str, str] | None = None,
) -> ReplyScript:
    """A Cloudflare v4 error envelope; status/message default to the real ones for `code`."""
    real_status, real_message = WORKERS_AI_ERRORS.get(code, (500, "Internal server error"))
    body = {
        "success": False,
        "errors": [{"code": code, "message": message or real_message}],
        "result": {},
        "messages": [],
    }
    return ReplyScript(status or real_status, body, dict(headers or {}))


def openai_error(
    status: int,
    type_: str,
    code: str | None = None,
    message: str = "error",
    *,
    retry_after: str | float | None = None,
    headers: Mapping[str, str] | None = None,
) -> ReplyScript:
    """`{"error": {message, type, param, code}}` with an optional Retry-After."""
    body = {"error": {"message": message, "type": type_, "param": None, "code": code}}
    return ReplyScript(status, body, _with_retry_after(headers, retry_after))


def anthropic_error(
    status: int,
    type_: str,
    message: str = "error",
    *,
    retry_after: str | float | None = None,
    headers: Mapping[str, str] | None = None,
) -> ReplyScript:
    """`{"type": "error", "error": {type, message}}` with an optional Retry-After."""
    body = {"type": "error", "error": {"type": type_, "message": message}}
    return ReplyScript(status, body, _with_retry_after(headers, retry_after))


def _finish_script(events: list[bytes], delay: float, chunk_split: int | None) -> StreamScript:
    script = raw_stream(*events, delay=delay)
    return script.split_every(chunk_split) if chunk_split else script


def _openai_usage(prompt: int, completion: int) -> dict[str, Any]:
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
        "prompt_tokens_details": {"cached_tokens": 0},
    }


def _with_retry_after(
    headers: Mapping[str, str] | None, retry_after: str | float | None
) -> dict[str, str]:
    merged = dict(headers or {})
    if retry_after is not None:
        merged["Retry-After"] = str(retry_after)
    return merged


def _json(value: object) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def _bytes(value: bytes | str) -> bytes:
    return value if isinstance(value, bytes) else value.encode()


def _anthropic_opening(prompt_tokens: int) -> list[bytes]:
    """message_start (with the prompt's token count) and a keep-alive ping."""
    message: dict[str, Any] = {
        "id": "msg_fake",
        "type": "message",
        "role": "assistant",
        "content": [],
        "model": "claude-test",
        "stop_reason": None,
        "stop_sequence": None,
        "usage": {"input_tokens": prompt_tokens, "output_tokens": 1},
    }
    return [anthropic_event("message_start", message=message), anthropic_event("ping")]


def _anthropic_block(index: int, kind: str, parts: Sequence[str]) -> list[bytes]:
    """One content block (`text` or `thinking`): start, a delta per part, stop."""
    events = [
        anthropic_event("content_block_start", index=index, content_block={"type": kind, kind: ""})
    ]
    for part in parts:
        delta = {"type": f"{kind}_delta", kind: part}
        events.append(anthropic_event("content_block_delta", index=index, delta=delta))
    events.append(anthropic_event("content_block_stop", index=index))
    return events
