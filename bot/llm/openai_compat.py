"""OpenAI-compatible Chat Completions streaming: OpenAI, Together, Groq, OpenRouter, Ollama, vLLM,
Workers AI `/ai/v1` and AI Gateway `/compat` (providers.md §2.1, §1.4, §5)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import httpx

from bot.llm.base import SSEChatProvider, StreamState, read_usage
from bot.llm.tools import openai_tools
from bot.llm.types import ChatCall, FinishReason, Message, TransientError, Usage

_FINISH_REASONS: dict[str, FinishReason] = {
    "stop": FinishReason.STOP,
    "eos": FinishReason.STOP,
    "end_turn": FinishReason.STOP,
    "length": FinishReason.LENGTH,
    "max_tokens": FinishReason.LENGTH,
    "tool_calls": FinishReason.TOOL_CALLS,
    "function_call": FinishReason.TOOL_CALLS,
    "content_filter": FinishReason.CONTENT_FILTER,
}


class OpenAICompatProvider(SSEChatProvider):
    """POST {base_url}/chat/completions with `stream: true` and usage in the stream."""

    def __init__(
        self,
        name: str,
        base_url: str,
        api_key: str | None,
        *,
        extra_headers: dict[str, str] | None = None,
        client: httpx.AsyncClient | None = None,
    ) -> None:
        super().__init__(name, client, secrets=(api_key, *(extra_headers or {}).values()))
        self._url = base_url.rstrip("/") + "/chat/completions"
        self._headers = {"accept": "text/event-stream", **(extra_headers or {})}
        if api_key:
            self._headers["authorization"] = f"Bearer {api_key}"

    def _request(self, call: ChatCall) -> tuple[str, dict[str, str], dict[str, Any]]:
        body: dict[str, Any] = {
            **call.extra,
            "model": call.model_id,
            "messages": wire_messages(call.messages),
            "stream": True,
            "stream_options": {"include_usage": True},
            "max_tokens": call.max_tokens,
        }
        add_sampling(body, call)
        if call.tools:
            body["tools"] = openai_tools(call.tools)
            body["tool_choice"] = "auto"
        return self._url, self._headers, body

    def _on_event(self, event: str, obj: dict[str, Any], state: StreamState) -> str:
        return read_openai_chunk(obj, state)


def add_sampling(body: dict[str, Any], call: ChatCall) -> None:
    """temperature and top_p, each only when set (providers' defaults otherwise)."""
    if call.temperature is not None:
        body["temperature"] = call.temperature
    if call.top_p is not None:
        body["top_p"] = call.top_p


def wire_messages(messages: Sequence[Message]) -> list[dict[str, Any]]:
    """Chat Completions messages: an assistant's calls as `tool_calls` (arguments as a JSON
    string, content null when it said nothing), each result as a `tool` message; a user turn
    with pictures as content parts, `image_url` with a data URL (OpenAI, and Workers AI's
    Llama 4 Scout, which takes the same parts)."""
    wire: list[dict[str, Any]] = []
    for m in messages:
        if m.role == "tool":
            wire.append({"role": "tool", "tool_call_id": m.tool_call_id, "content": m.content})
        elif m.tool_calls:
            calls = [
                {
                    "id": call.id,
                    "type": "function",
                    "function": {"name": call.name, "arguments": json.dumps(call.arguments)},
                }
                for call in m.tool_calls
            ]
            wire.append({"role": m.role, "content": m.content or None, "tool_calls": calls})
        elif m.images:  # content parts: the text, then each picture as a data URL
            pictures = [
                {
                    "type": "image_url",
                    "image_url": {"url": f"data:{i.media_type};base64,{i.base64}"},
                }
                for i in m.images
            ]
            wire.append(
                {"role": m.role, "content": [{"type": "text", "text": m.content}, *pictures]}
            )
        else:
            wire.append({"role": m.role, "content": m.content})
    return wire


def read_openai_chunk(obj: dict[str, Any], state: StreamState) -> str:
    """Read a chat.completion.chunk, or a native Workers AI `{"response": …}` chunk; return text.

    `choices` may be missing or empty and `usage` may ride on any chunk (providers.md §5).
    `delta.content` is a string or a list of parts (Mistral's text and thinking parts). Reasoning
    (`delta.reasoning_content`, `delta.reasoning`, thinking parts) goes to `state.reasoning`,
    never into the text. Tool calls go to `state.tools`: OpenAI fragments (`delta.tool_calls`) or
    Workers AI's whole calls, which may come in the last event (§1.3).
    """
    text = ""
    finish: object = obj.get("finish_reason")  # Workers AI puts it top level at times
    choices = obj.get("choices")
    if isinstance(choices, list) and choices and isinstance(choices[0], dict):
        choice = choices[0]
        delta = choice.get("delta")
        if isinstance(delta, dict):
            text = _content(delta.get("content"), state)
            for key in _REASONING_KEYS:
                if isinstance(delta.get(key), str):
                    state.reasoning += delta[key]
            _read_tool_calls(delta.get("tool_calls"), state)
        finish = choice.get("finish_reason") or finish
    _read_tool_calls(obj.get("tool_calls"), state)
    response = obj.get("response")
    if isinstance(response, str):
        text += response
    state.add_usage(_usage(obj.get("usage")))
    if isinstance(finish, str) and finish:
        if finish == "error":
            raise TransientError("the provider stopped the reply with an error")
        state.finish = _FINISH_REASONS.get(finish, FinishReason.STOP)
    return text


_REASONING_KEYS = ("reasoning_content", "reasoning")
"""DeepSeek, Qwen and vLLM say `reasoning_content`; Groq, OpenRouter and xAI `reasoning`."""


def _content(value: object, state: StreamState) -> str:
    """The text of `delta.content`: a string, or the text parts of a list (thinking parts are
    reasoning; a part of any other type, an image say, shows nothing)."""
    if isinstance(value, str):
        return value
    if not isinstance(value, list):
        return ""
    text = []
    for part in value:
        if not isinstance(part, dict):
            continue
        kind = part.get("type")
        if kind == "text" and isinstance(part.get("text"), str):
            text.append(part["text"])
        elif kind == "thinking":
            state.reasoning += _thinking_text(part.get("thinking"))
    return "".join(text)


def _thinking_text(value: object) -> str:
    """A thinking part's text: a string, or (Magistral) a list of text parts."""
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        return "".join(
            item["text"]
            for item in value
            if isinstance(item, dict) and isinstance(item.get("text"), str)
        )
    return ""


def _usage(value: object) -> Usage | None:
    return read_usage(value, ("prompt_tokens",), "completion_tokens")


def _read_tool_calls(value: object, state: StreamState) -> None:
    """OpenAI fragments carry an `index`; Workers AI native calls come whole, without one."""
    if not isinstance(value, list):
        return
    for item in value:
        if not isinstance(item, dict):
            continue
        function = item.get("function")
        fields = function if isinstance(function, dict) else item
        name, arguments = fields.get("name"), fields.get("arguments")
        index = item.get("index")
        if isinstance(index, int) and not isinstance(index, bool):
            state.tools.fragment(index, id=item.get("id"), name=name, arguments=arguments)
        else:
            state.tools.whole(id=item.get("id"), name=name, arguments=arguments)
