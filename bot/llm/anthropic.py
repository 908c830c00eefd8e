"""Anthropic Messages API streaming (providers.md §3): no [DONE]; `message_stop` ends the stream."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import httpx

from bot.llm.base import SSEChatProvider, StreamState, read_usage
from bot.llm.tools import anthropic_tools
from bot.llm.types import ChatCall, FinishReason, Message, Usage

_STOP_REASONS: dict[str, FinishReason] = {
    "end_turn": FinishReason.STOP,
    "stop_sequence": FinishReason.STOP,
    "pause_turn": FinishReason.STOP,
    "max_tokens": FinishReason.LENGTH,
    "model_context_window_exceeded": FinishReason.LENGTH,
    "tool_use": FinishReason.TOOL_CALLS,
    "refusal": FinishReason.CONTENT_FILTER,
}
# Cached prompt tokens are reported apart from input_tokens; a prompt is all three.
_PROMPT_KEYS = ("input_tokens", "cache_creation_input_tokens", "cache_read_input_tokens")


class AnthropicProvider(SSEChatProvider):
    """POST {base_url}/v1/messages, `stream: true`; system messages become top-level `system`."""

    def __init__(
        self,
        api_key: str | None,
        *,
        base_url: str = "https://api.anthropic.com",
        version: str = "2023-06-01",
        client: httpx.AsyncClient | None = None,
    ) -> None:
        super().__init__("anthropic", client, secrets=(api_key,))
        self._url = base_url.rstrip("/") + "/v1/messages"
        self._headers = {"accept": "text/event-stream", "anthropic-version": version}
        if api_key:
            self._headers["x-api-key"] = api_key

    def _request(self, call: ChatCall) -> tuple[str, dict[str, str], dict[str, Any]]:
        system, messages = split_system(call.messages)
        body: dict[str, Any] = {
            **call.extra,
            "model": call.model_id,
            "max_tokens": call.max_tokens,
            "messages": messages,
            "stream": True,
        }
        if system:
            body["system"] = system
        if call.temperature is not None:
            body["temperature"] = call.temperature
        if call.top_p is not None:
            body["top_p"] = call.top_p
        if call.tools:
            body["tools"] = anthropic_tools(call.tools)
        return self._url, self._headers, body

    def _on_event(self, event: str, obj: dict[str, Any], state: StreamState) -> str:
        kind = obj.get("type") or event
        if kind == "content_block_delta":
            delta = _dict(obj.get("delta"))
            if delta.get("type") == "text_delta":
                return _str(delta.get("text"))
            if delta.get("type") == "thinking_delta":
                state.reasoning += _str(delta.get("thinking"))
            if delta.get("type") == "input_json_delta":
                state.tools.fragment(obj.get("index"), arguments=_str(delta.get("partial_json")))
        elif kind == "content_block_start":
            block = _dict(obj.get("content_block"))
            if block.get("type") == "text":
                return _str(block.get("text"))
            if block.get("type") == "thinking":
                state.reasoning += _str(block.get("thinking"))
                state.thinking = True
            if block.get("type") == "redacted_thinking":
                state.thinking = True  # encrypted: the model thinks, nothing to show of it
            if block.get("type") == "tool_use":
                state.tools.fragment(
                    obj.get("index"),
                    id=block.get("id"),
                    name=block.get("name"),
                    arguments=block.get("input"),
                )
        elif kind == "message_start":
            state.add_usage(_usage(_dict(obj.get("message")).get("usage")))
        elif kind == "message_delta":
            state.add_usage(_usage(obj.get("usage")))
            reason = _dict(obj.get("delta")).get("stop_reason")
            if isinstance(reason, str) and reason:
                state.finish = _STOP_REASONS.get(reason, FinishReason.STOP)
        elif kind == "message_stop":
            state.terminated = True
        return ""


def split_system(messages: Sequence[Message]) -> tuple[str, list[dict[str, Any]]]:
    """(system text, user/assistant turns with consecutive same-role turns merged).

    An assistant's calls are `tool_use` blocks after its text; results are `tool_result` blocks
    of the user turn that follows (the API wants them there, first)."""
    system = "\n\n".join(m.content for m in messages if m.role == "system" and m.content)
    turns: list[dict[str, Any]] = []
    for m in messages:
        if m.role == "system":
            continue
        role = "user" if m.role == "tool" else m.role
        content: Content = m.content
        if m.role == "tool":
            result = {"type": "tool_result", "tool_use_id": m.tool_call_id, "content": m.content}
            content = [{**result, "is_error": True} if m.is_error else result]
        elif m.tool_calls:
            uses = [
                {"type": "tool_use", "id": c.id, "name": c.name, "input": dict(c.arguments)}
                for c in m.tool_calls
            ]
            content = [{"type": "text", "text": m.content}] if m.content else []
            content += uses
        elif m.images:  # image blocks first, as Anthropic recommends, then the text
            content = [
                {"type": "image",
                 "source": {"type": "base64", "media_type": i.media_type, "data": i.base64}}
                for i in m.images
            ] + ([{"type": "text", "text": m.content}] if m.content else [])  # fmt: skip
        if turns and turns[-1]["role"] == role:
            turns[-1]["content"] = _joined(turns[-1]["content"], content)
        else:
            turns.append({"role": role, "content": content})
    return system, turns


Content = str | list[dict[str, Any]]


def _joined(first: Content, second: Content) -> Content:
    """Two turns' content as one: text joined by a blank line, else blocks in order."""
    if isinstance(first, str) and isinstance(second, str):
        return f"{first}\n\n{second}"
    return _blocks(first) + _blocks(second)


def _blocks(content: Content) -> list[dict[str, Any]]:
    if isinstance(content, str):
        return [{"type": "text", "text": content}] if content else []
    return content


def _usage(value: object) -> Usage | None:
    return read_usage(value, _PROMPT_KEYS, "output_tokens")


def _dict(value: object) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _str(value: object) -> str:
    return value if isinstance(value, str) else ""
