"""The `generate_image` tool an LLM may call mid-chat: it produces a quote, never a charge."""

from __future__ import annotations

from collections.abc import Mapping

from bot.domain import ConversationKey
from bot.images.catalog import IMAGE_PROVIDERS, SIZES, TIERS
from bot.images.engine import ImageEngine, ImageRejected, ImageRequest
from bot.images.views import quote_offer
from bot.ports import ImageSurface
from bot.store import ImageJob

GENERATE_IMAGE = "generate_image"
GENERATE_IMAGE_DESCRIPTION = (
    "Propose generating an image. This only shows the user a price quote with a "
    "Generate button; nothing is generated or charged unless the user clicks it."
)
GENERATE_IMAGE_PARAMETERS: dict[str, object] = {
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
}
GENERATE_IMAGE_TOOL: dict[str, object] = {
    "type": "function",
    "function": {
        "name": GENERATE_IMAGE,
        "description": GENERATE_IMAGE_DESCRIPTION,
        "parameters": GENERATE_IMAGE_PARAMETERS,
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


async def offer_from_tool_call(
    engine: ImageEngine,
    key: ConversationKey,
    user_id: str,
    arguments: Mapping[str, object],
    surface: ImageSurface,
) -> ImageJob:
    """Quote a tool call and post the offer on `surface` (the /image quote UI); never a charge.

    Raises ImageRejected (nothing posted), or the surface's RateLimited / SurfaceError.
    """
    job = await quote_from_tool_call(engine, key, user_id, arguments)
    ttl_minutes = max(1, round(engine.quote_ttl / 60))
    await surface.offer(quote_offer(job, engine.catalog, ttl_minutes=ttl_minutes))
    return job
