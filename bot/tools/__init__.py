"""Tools a chat turn can run for the model: MCP servers' tools (bot/tools/mcp.py) behind one shape.

The model sees a `ToolSpec` (a wire-safe name, a description, a JSON schema); the turn runner
(bot/engine/rounds.py) runs the call through its `Action` and hands the model a `ToolResult`.
A result is untrusted text: it goes back in a tool message, never into the system prompt, and
it is never shown to the user raw (the reply shows a progress line per call instead).
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Protocol

from bot.llm.types import ToolSpec

WIRE_NAME = re.compile(r"[^a-zA-Z0-9_-]")
"""What the providers refuse in a tool name (OpenAI and Anthropic: ^[a-zA-Z0-9_-]{1,64}$)."""


@dataclass(frozen=True, slots=True)
class ToolResult:
    """What the model reads of a call, and `note`: why it failed, in words fit for the user
    (only where Parley, not the tool, says so: a timeout, a dead server)."""

    text: str
    is_error: bool = False
    note: str = ""
    summary: str = ""
    """What the progress line says of a success ("5 results"; "done" when empty)."""

    @classmethod
    def failed(cls, why: str) -> ToolResult:
        return cls(why, True, why)


@dataclass(frozen=True, slots=True)
class Action:
    """One tool a turn offers: what the model sees, what the user sees, how it runs."""

    spec: ToolSpec
    label: str
    """`server.tool`, as the reply's progress line names it."""
    run: Callable[[Mapping[str, object]], Awaitable[ToolResult]]
    acts: bool = False
    """It may change the world: it runs only once its asker approves (bot/engine/approvals.py)."""
    doing: str = ""
    """How the progress line says it ("Searching the web for"); else it names the tool."""


def wire_name(server: str, tool: str) -> str:
    """`server__tool` in the characters every provider takes, at most 64 of them."""
    return WIRE_NAME.sub("_", f"{server}__{tool}")[:64]


def allowed(patterns: tuple[str, ...], server: str, tool: str) -> bool:
    """Whether an allow-list (`server.tool`, `server.*` or `server`) lets `server.tool` run."""
    return any(p in (f"{server}.{tool}", f"{server}.*", server) for p in patterns)


class Toolboxes:
    """Several toolboxes as one (the MCP servers and web search)."""

    def __init__(self, *boxes: Toolbox) -> None:
        self.boxes = boxes

    def actions(self, allow: tuple[str, ...] | None, *, acting: bool = True) -> list[Action]:
        return [a for box in self.boxes for a in box.actions(allow, acting=acting)]

    def offline(self) -> list[str]:
        return [server for box in self.boxes for server in box.offline()]

    def unknown(self, names: tuple[str, ...]) -> list[str]:
        """The allow-list entries that name no tool offered here (`generate_image` aside; a
        server configured but not connected now is taken on trust)."""
        labels = {a.label for a in self.actions(None)}
        trusted = set(self.offline())
        return [
            name
            for name in names
            if name != "generate_image"
            and name.partition(".")[0] not in trusted
            and not any(allowed((name,), *label.split(".", 1)) for label in labels)
        ]


class Toolbox(Protocol):
    """Where a turn's actions come from (McpServers)."""

    def actions(self, allow: tuple[str, ...] | None, *, acting: bool = True) -> list[Action]:
        """The tools to offer: those `allow` lets run (None: all of them); with `acting`
        False, none of those that act on the world."""
        ...

    def offline(self) -> list[str]:
        """Servers whose tools cannot be listed now (taken on trust in allow-lists)."""
        ...
