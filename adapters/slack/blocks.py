"""Block Kit for Parley's messages: the reply as a markdown block, its controls as buttons."""

from __future__ import annotations

from typing import Any

from bot.ports import Control

ACTION_PREFIX = "parley_"
"""Buttons' action_id is `parley_<action>`; the value is the turn id (state lives in the store)."""
ACTIONS_BLOCK_ID = "parley_controls"
_STYLES = {"stop": "danger", "approve": "primary"}
_LABELS = {"stop": "Stop", "regenerate": "Regenerate", "approve": "Approve", "deny": "Deny"}


def action_id(action: str) -> str:
    return f"{ACTION_PREFIX}{action}"


def button(action: str, label: str, value: str, style: str | None = None) -> dict[str, Any]:
    """A Block Kit button (labels hold 75 characters)."""
    text = {"type": "plain_text", "text": label[:75]}
    made = {"type": "button", "action_id": action, "text": text, "value": value}
    return made | {"style": style} if style else made


def buttons_in(message: dict[str, Any]) -> dict[str, str]:
    """A posted message's buttons: action_id to value."""
    return {
        str(element.get("action_id")): str(element.get("value") or "")
        for block in message.get("blocks") or [] if block.get("type") == "actions"
        for element in block.get("elements") or []
    }  # fmt: skip


def controls_block(controls: tuple[Control, ...]) -> list[dict[str, Any]]:
    """An actions block with one button per control; [] for none."""
    if not controls:
        return []
    elements = [
        button(action_id(c.action), c.label or _LABELS[c.action], c.ref, _STYLES.get(c.action))
        for c in controls
    ]
    return [{"type": "actions", "block_id": ACTIONS_BLOCK_ID, "elements": elements}]


def feedback_block(turn: str) -> dict[str, Any]:
    """👍 / 👎 under a finished answer in an assistant thread (the value names the turn)."""

    def button(label: str, rating: str) -> dict[str, Any]:
        return {"text": {"type": "plain_text", "text": label}, "value": f"{rating}:{turn}"}

    element = {
        "type": "feedback_buttons",
        "action_id": action_id("feedback"),
        "positive_button": button("Good response", "good"),
        "negative_button": button("Bad response", "bad"),
    }
    return {"type": "context_actions", "elements": [element]}


def message_blocks(text: str, controls: tuple[Control, ...]) -> list[dict[str, Any]]:
    """The reply in a markdown block (standard Markdown, as models write it), then its buttons."""
    return [{"type": "markdown", "text": text}, *controls_block(controls)]


def note_blocks(line: str, controls: tuple[Control, ...]) -> list[dict[str, Any]]:
    """The note beside a native stream (bot.engine.note): its line small, then its buttons."""
    note = {"type": "context", "elements": [{"type": "mrkdwn", "text": f"_{line}_"}]}
    return [note, *controls_block(controls)] if controls else [note]


def quote_question(user: str, text: str) -> str:
    """What /chat posts in the channel for the asker (a bot cannot post as a user)."""
    quoted = "\n".join(f"> {line}" if line else ">" for line in text.splitlines())
    return f"<@{user}> asked:\n{quoted}"
