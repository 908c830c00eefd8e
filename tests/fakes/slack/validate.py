"""What the Slack fake rejects: Slack's message and Block Kit limits, with Slack's error codes."""

from __future__ import annotations

from typing import Any

MAX_TEXT = 40_000
"""`text` past this is truncated by chat.postMessage (with `warning: message_truncated`)."""
MAX_UPDATE_TEXT = 4_000
"""chat.update answers `msg_too_long` past about this many characters (observed in production)."""
MAX_MARKDOWN_TEXT = 12_000
"""markdown_text per call (postMessage, update, the stream methods) and a markdown block's text."""
MAX_BLOCKS = 50
MAX_SECTION_TEXT = 3_000
MAX_ACTION_ID = 255
MAX_BLOCK_ID = 255
MAX_BUTTON_TEXT = 75
MAX_BUTTON_VALUE = 2_000
MAX_ACTIONS_ELEMENTS = 25
MAX_HEADER_TEXT = 150

_KNOWN_BLOCKS = {
    "section",
    "actions",
    "context",
    "divider",
    "markdown",
    "header",
    "image",
    "rich_text",
    "context_actions",
}
MAX_PROMPTS = 4
MAX_LOADING_MESSAGES = 10


def _feedback(element: Any, where: str) -> None:
    """A `feedback_buttons` element: an action_id and both buttons, each a plain_text label and
    a value (what context_actions takes besides icon buttons)."""
    if not isinstance(element, dict) or element.get("type") not in ("feedback_buttons",):
        raise Invalid("invalid_blocks", f"{where} must be feedback_buttons")
    if not isinstance(element.get("action_id"), str) or not element["action_id"]:
        raise Invalid("invalid_blocks", f"{where}.action_id is required")
    for side in ("positive_button", "negative_button"):
        button = element.get(side)
        if not isinstance(button, dict):
            raise Invalid("invalid_blocks", f"{where}.{side} is required")
        _text_object(button.get("text"), f"{where}.{side}.text", 75)
        if button["text"].get("type") != "plain_text":
            raise Invalid("invalid_blocks", f"{where}.{side}.text must be plain_text")
        if not isinstance(button.get("value"), str) or not button["value"]:
            raise Invalid("invalid_blocks", f"{where}.{side}.value is required")


class Invalid(Exception):
    """A request Slack would refuse: `error` is Slack's code, `detail` the human reason."""

    def __init__(self, error: str, detail: str = "") -> None:
        super().__init__(f"{error}: {detail}" if detail else error)
        self.error = error
        self.detail = detail


def _text_object(obj: Any, where: str, limit: int) -> str:
    if not isinstance(obj, dict) or obj.get("type") not in ("plain_text", "mrkdwn"):
        raise Invalid("invalid_blocks", f"{where} must be a text object")
    text = obj.get("text")
    if not isinstance(text, str) or not text:
        raise Invalid("invalid_blocks", f"{where}.text must be a non-empty string")
    if len(text) > limit:
        raise Invalid("invalid_blocks", f"{where}.text is {len(text)} > {limit} characters")
    return text


def _button(element: Any, where: str) -> None:
    _text_object(element.get("text"), f"{where}.text", MAX_BUTTON_TEXT)
    if element["text"]["type"] != "plain_text":
        raise Invalid("invalid_blocks", f"{where}.text must be plain_text")
    action_id = element.get("action_id", "")
    if not isinstance(action_id, str) or len(action_id) > MAX_ACTION_ID:
        raise Invalid("invalid_blocks", f"{where}.action_id longer than {MAX_ACTION_ID}")
    value = element.get("value", "")
    if not isinstance(value, str) or len(value) > MAX_BUTTON_VALUE:
        raise Invalid("invalid_blocks", f"{where}.value longer than {MAX_BUTTON_VALUE}")
    if element.get("style") not in (None, "primary", "danger"):
        raise Invalid("invalid_blocks", f"{where}.style must be primary or danger")


def validate_blocks(blocks: Any) -> list[dict[str, Any]]:
    """The parsed blocks, or Invalid("invalid_blocks") the way Slack answers."""
    if not isinstance(blocks, list):
        raise Invalid("invalid_blocks_format", "blocks must be an array")
    if len(blocks) > MAX_BLOCKS:
        raise Invalid("invalid_blocks", f"{len(blocks)} blocks > {MAX_BLOCKS}")
    action_ids: set[str] = set()
    markdown_total = 0
    for i, block in enumerate(blocks):
        where = f"blocks[{i}]"
        if not isinstance(block, dict) or block.get("type") not in _KNOWN_BLOCKS:
            raise Invalid("invalid_blocks", f"{where} has an unknown type")
        block_id = block.get("block_id", "")
        if not isinstance(block_id, str) or len(block_id) > MAX_BLOCK_ID:
            raise Invalid("invalid_blocks", f"{where}.block_id longer than {MAX_BLOCK_ID}")
        kind = block["type"]
        if kind == "section":
            if "text" in block:
                _text_object(block["text"], f"{where}.text", MAX_SECTION_TEXT)
            elif "fields" not in block:
                raise Invalid("invalid_blocks", f"{where} needs text or fields")
        elif kind == "markdown":
            text = block.get("text")
            if not isinstance(text, str) or not text:
                raise Invalid("invalid_blocks", f"{where}.text must be a non-empty string")
            markdown_total += len(text)
        elif kind == "header":
            _text_object(block.get("text"), f"{where}.text", MAX_HEADER_TEXT)
        elif kind == "actions":
            elements = block.get("elements")
            if not isinstance(elements, list) or not 1 <= len(elements) <= MAX_ACTIONS_ELEMENTS:
                raise Invalid("invalid_blocks", f"{where}.elements must hold 1-25 elements")
            for j, element in enumerate(elements):
                if not isinstance(element, dict) or element.get("type") != "button":
                    continue
                _button(element, f"{where}.elements[{j}]")
                action_id = element.get("action_id", "")
                if action_id and action_id in action_ids:
                    raise Invalid("invalid_blocks", f"duplicate action_id {action_id!r}")
                action_ids.add(action_id)
        elif kind == "context":
            elements = block.get("elements")
            if not isinstance(elements, list) or not 1 <= len(elements) <= 10:
                raise Invalid("invalid_blocks", f"{where}.elements must hold 1-10 elements")
        elif kind == "context_actions":
            elements = block.get("elements")
            if not isinstance(elements, list) or not 1 <= len(elements) <= 5:
                raise Invalid("invalid_blocks", f"{where}.elements must hold 1-5 elements")
            for j, element in enumerate(elements):
                _feedback(element, f"{where}.elements[{j}]")
    if markdown_total > MAX_MARKDOWN_TEXT:
        raise Invalid("invalid_blocks", f"markdown blocks hold {markdown_total} > 12000 chars")
    return blocks
