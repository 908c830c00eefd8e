"""The `generate_image` tool an LLM may call mid-chat: it produces a quote, never a charge."""

from __future__ import annotations

from collections.abc import Mapping

from bot.domain import ConversationKey
from bot.images.catalog import IMAGE_PROVIDERS, SIZES, TIERS
from bot.images.engine import ImageEngine, ImageRejected, ImageRequest
from bot.store import ImageJob

GENERATE_IMAGE_TOOL: dict[str, object] = {
    "type": "function",
    "function": {
        "name": "generate_image",
        "description": (
            "Propose generating an image. This only shows the user a price quote with a "
            "Generate button; nothing is generated or charged unless the user clicks it."
        ),
        "parameters": {
            "type": "object",
            "properties": {
                "prompt": {"type": "string", "description": "What the image should show."},
                "quality": {"type": "string", "enum": list(TIERS)},
                "size": {"type": "string", "enum": list(SIZES)},
                "provider": {"type": "string", "enum": list(IMAGE_PROVIDERS)},
                "negative": {"type": "string", "description": "What to leave out."},
            },
            "required": ["prompt"],
            "additionalProperties": False,
        },
    },
}


async def quote_from_tool_call(
    engine: ImageEngine, key: ConversationKey, user_id: str, arguments: Mapping[str, object]
) -> ImageJob:
    """Turn a tool call's arguments into a quote for the user whose turn it is.

    Raises ImageRejected (also for malformed arguments); the result is a quote, never a charge.
    """
    prompt = arguments.get("prompt")
    if not isinstance(prompt, str):
        raise ImageRejected("The image request had no prompt.")

    def text(name: str) -> str | None:
        value = arguments.get(name)
        return value if isinstance(value, str) and value else None

    request = ImageRequest(
        key=key,
        user_id=user_id,
        prompt=prompt,
        quality=text("quality"),
        size=text("size"),
        provider=text("provider"),
        negative=text("negative"),
    )
    return await engine.quote(request)
