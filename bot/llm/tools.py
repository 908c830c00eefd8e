"""Tool calling on the wire: tool specs out in each protocol's shape, streamed calls back in.

Calls arrive in pieces (OpenAI `delta.tool_calls` by index, Anthropic `tool_use` blocks with
`input_json_delta`) or whole (Workers AI native `tool_calls: [{name, arguments}]`);
`ToolCallAssembler` gathers them and hands back whole calls when the stream ends. A call whose
arguments are not a JSON object is dropped with a log line, never raised.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from bot.llm.types import ToolCall, ToolSpec
from bot.text import clean_text

log = logging.getLogger("parley.llm.tools")


def openai_tools(tools: Sequence[ToolSpec]) -> list[dict[str, Any]]:
    """`tools` for OpenAI-compatible and Workers AI bodies: function objects."""
    return [
        {
            "type": "function",
            "function": {
                "name": t.name,
                "description": t.description,
                "parameters": dict(t.parameters),
            },
        }
        for t in tools
    ]


def anthropic_tools(tools: Sequence[ToolSpec]) -> list[dict[str, Any]]:
    """`tools` for the Anthropic Messages API."""
    return [
        {"name": t.name, "description": t.description, "input_schema": dict(t.parameters)}
        for t in tools
    ]


@dataclass(slots=True)
class _Pending:
    id: str = ""
    name: str = ""
    text: str = ""  # argument JSON, concatenated from its fragments
    value: object = None  # arguments given whole (an object, or a JSON string)


@dataclass(slots=True)
class ToolCallAssembler:
    """Collects one stream's tool calls, in the order the model started them."""

    _calls: list[_Pending] = field(default_factory=list)
    _by_key: dict[object, _Pending] = field(default_factory=dict)

    def __bool__(self) -> bool:
        return bool(self._calls)

    def fragment(
        self,
        key: object,
        *,
        id: object = None,
        name: object = None,
        arguments: object = None,
    ) -> None:
        """A piece of the call at `key` (an index): id and name once, argument text appended."""
        pending = self._by_key.get(key)
        if pending is None:
            pending = self._by_key[key] = _Pending()
            self._calls.append(pending)
        if isinstance(id, str) and id:
            pending.id = id
        if isinstance(name, str) and name and not pending.name:
            pending.name = name
        if isinstance(arguments, str):
            pending.text += arguments
        elif isinstance(arguments, dict):
            pending.value = arguments

    def whole(self, *, id: object = None, name: object = None, arguments: object = None) -> None:
        """A call that arrived in one piece; `arguments` is an object or a JSON string."""
        pending = _Pending(
            id=id if isinstance(id, str) else "",
            name=name if isinstance(name, str) else "",
            value=arguments,
        )
        self._calls.append(pending)

    def finish(self, provider: str) -> tuple[ToolCall, ...]:
        """The complete calls; malformed ones are logged and left out."""
        calls: list[ToolCall] = []
        for number, pending in enumerate(self._calls):
            call_id = pending.id or f"call_{number}"
            arguments = _arguments(pending)
            if not pending.name or arguments is None:
                log.warning(
                    "tool call dropped: malformed provider=%s tool=%s id=%s arguments=%.200r",
                    provider,
                    pending.name or "-",
                    call_id,
                    pending.text if pending.value is None else pending.value,
                )
                continue
            calls.append(ToolCall(call_id, pending.name, arguments))
        return tuple(calls)


def _arguments(pending: _Pending) -> dict[str, object] | None:
    value: object = pending.value
    if pending.text.strip():
        value = pending.text
    elif value is None:
        return {}  # a call without arguments
    if isinstance(value, str):
        if not value.strip():
            return {}
        try:
            value = json.loads(clean_text(value))  # pieces may have split a surrogate pair
        except ValueError:
            return None
    return value if isinstance(value, dict) else None
