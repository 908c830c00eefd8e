"""The tools a chat turn offers the model, and what their calls do once the reply has streamed.

Only `generate_image` exists: its call becomes an image quote in the same thread (the /image quote
UI). A tool call never spends: the image provider is called only when the user confirms the
quote, through `bot.images.flow.handle_click`.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

from bot.catalog import ModelEntry
from bot.domain import ConversationKey
from bot.images.engine import ImageEngine, ImageRejected
from bot.images.tools import (
    GENERATE_IMAGE,
    GENERATE_IMAGE_DESCRIPTION,
    GENERATE_IMAGE_PARAMETERS,
    offer_from_tool_call,
)
from bot.llm.types import ToolCall, ToolSpec
from bot.ops.logs import event
from bot.ports import ImageSurface, RateLimited, SurfaceError
from bot.store import Persona

log = logging.getLogger("parley.tools")

GENERATE_IMAGE_SPEC = ToolSpec(
    GENERATE_IMAGE, GENERATE_IMAGE_DESCRIPTION, GENERATE_IMAGE_PARAMETERS
)
MAX_QUOTES_PER_REPLY = 1
"""A model that asks for several images in one reply gets one quote; it can offer more later."""

LINE_QUOTED = "_(I've prepared an image quote — nothing is charged until you confirm it.)_"
LINE_NOT_POSTED = "_(I couldn't post the image quote here; try /image instead.)_"
LINE_ONE_QUOTE = "_(one image quote per reply; ask again for another.)_"


def offered_tools(
    entry: ModelEntry,
    persona: Persona | None,
    images: ImageEngine | None,
    surface: ImageSurface | None,
) -> tuple[ToolSpec, ...]:
    """generate_image when images are on, the model can call tools and the persona allows it.

    A persona allows only the tools it lists; without a persona the tool is allowed.
    """
    if images is None or surface is None or not entry.capabilities.tools:
        return ()
    if persona is not None and GENERATE_IMAGE not in persona.tools:
        return ()
    return (GENERATE_IMAGE_SPEC,)


@dataclass(frozen=True, slots=True)
class ToolTurn:
    """Where the calls of one reply take effect: whose turn, which thread, which image core."""

    key: ConversationKey
    user_id: str
    images: ImageEngine | None
    surface: ImageSurface | None
    offered: tuple[ToolSpec, ...]


async def run_tool_calls(calls: Sequence[ToolCall], turn: ToolTurn) -> list[str]:
    """Act on the calls; returns the lines to end the assistant's reply with (one per call)."""
    offered = {spec.name for spec in turn.offered}
    lines: list[str] = []
    quotes = 0
    for call in calls:
        if call.name not in offered or turn.images is None or turn.surface is None:
            _log(turn, call, "ignored")
            lines.append(f"_(ignored a call to a tool I don't offer here: {call.name[:64]})_")
            continue
        if quotes >= MAX_QUOTES_PER_REPLY:
            _log(turn, call, "over the limit")
            lines.append(LINE_ONE_QUOTE)
            continue
        try:
            job = await offer_from_tool_call(
                turn.images, turn.key, turn.user_id, call.arguments, turn.surface
            )
        except ImageRejected as exc:
            _log(turn, call, "rejected", reason=exc.message)
            lines.append(f"_(no image quote: {exc.message})_")
            continue
        except (RateLimited, SurfaceError) as exc:
            _log(turn, call, "not posted", reason=str(exc))
            lines.append(LINE_NOT_POSTED)
            continue
        quotes += 1
        _log(turn, call, "quoted", quote=job.id, provider=job.provider, estimate=str(job.estimate))
        lines.append(LINE_QUOTED)
    return _unique(lines)


def _log(turn: ToolTurn, call: ToolCall, outcome: str, **fields: object) -> None:
    event(
        log,
        logging.INFO,
        "tool call",
        conversation_key=str(turn.key),
        tool=call.name,
        call_id=call.id,
        outcome=outcome,
        **fields,
    )


def _unique(lines: list[str]) -> list[str]:
    return list(dict.fromkeys(lines))
