"""The image flow on any ImageSurface: what adapters call for /image and button clicks.

await offer_quote(engine, request, surface)            # /image and the generate_image tool
closed = await click(engine, custom_id, actor, surface)  # any "img:..." button, by an Actor
(/images is a command of bot.commands.table.)
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from bot.domain import Actor
from bot.images.engine import ImageEngine, ImageRejected, ImageRequest, Outcome
from bot.images.views import custom_id, outcome_line, parse_custom_id, quote_offer
from bot.ports import ImageButton, ImageSurface, ImageUpload, SurfaceError
from bot.sorry import apologize
from bot.store import ImageJob

log = logging.getLogger("parley.images")

IMAGES_OFF = "Image generation is not set up on this bot."
"""/image, /images or an image button where no image provider is configured (every platform)."""
QUOTE_POSTED = "Your quote is in the channel: nothing is charged until you click Generate."
"""Where the platform needs a private answer to /image besides the quote (Discord's response)."""
QUOTE_NOT_POSTED = "Sorry, I couldn't post the quote here. Nothing was charged."
"""The platform refused the offer message (a SurfaceError from offer_quote)."""
RESULT_NOT_POSTED = (
    "Sorry, I couldn't post the result here. `/images` lists what was made and charged."
)
"""The platform refused what a click led to (an image, a new quote): it may have been charged."""


async def offer_quote(
    engine: ImageEngine, request: ImageRequest, surface: ImageSurface
) -> ImageJob | None:
    """Quote and post the offer; a rejected request becomes a notice. Nothing is charged."""
    try:
        job = await engine.quote(request)
    except ImageRejected as exc:
        await surface.notify(exc.message)
        return None
    await surface.offer(quote_offer(job, engine.catalog, ttl_minutes=_minutes(engine)))
    return job


@dataclass(frozen=True, slots=True)
class Closed:
    """A clicked quote that can do nothing more: it shows `line` in place of its buttons."""

    line: str
    job: ImageJob


async def click(
    engine: ImageEngine | None, button_id: str, actor: Actor, surface: ImageSurface
) -> Closed | None:
    """One click, shown on `surface`, whatever happens: images off, a platform that refuses
    what the click led to, a failure (with its reference). Closed when the quote should close."""
    if engine is None:
        await surface.notify(IMAGES_OFF)
        return None
    try:
        outcome = await handle_click(engine, button_id, actor, surface)
    except SurfaceError as exc:
        log.warning("image click %s: could not post: %s", button_id, exc)
        await surface.notify(RESULT_NOT_POSTED)
        return None
    except Exception as exc:
        await surface.notify(apologize(log, exc, "image click %s by %s", button_id, actor))
        return None
    line = closing(outcome, actor, button_id)
    if line is None or outcome is None or outcome.job is None:
        return None
    return Closed(line, outcome.job)


async def handle_click(
    engine: ImageEngine, button_id: str, actor: Actor, surface: ImageSurface
) -> Outcome | None:
    """Dispatch one click by `actor` (the platform, tenant and user the platform says clicked);
    None when the id is not an image button, and for Regenerate (it offers a new quote)."""
    parsed = parse_custom_id(button_id)
    if parsed is None:
        return None
    action, ref, index = parsed
    if action == "cancel":
        outcome = await engine.cancel(ref, actor)
        await surface.notify(outcome.message)
        return outcome
    if action == "regenerate":
        try:
            job = await engine.requote(ref, actor)
        except ImageRejected as exc:
            await surface.notify(exc.message)
            return None
        await surface.offer(quote_offer(job, engine.catalog, ttl_minutes=_minutes(engine)))
        return None
    outcome = await engine.confirm(ref, actor, choice=index if action == "alternative" else None)
    await deliver(engine, outcome, surface)
    return outcome


async def deliver(engine: ImageEngine, outcome: Outcome, surface: ImageSurface) -> None:
    """Show an outcome: upload the image, offer the new price, or say why nothing happened."""
    if outcome.kind == "generated" and outcome.image is not None and outcome.job is not None:
        image = outcome.image
        caption = f"{image.model} ({image.provider}) · {image.size} · " + image.badges[3]
        if image.fallback_used:
            caption += f" · ⚠️ fallback used: {image.fallback_from} was unavailable"
        regenerate = ImageButton(
            "regenerate", custom_id("regenerate", outcome.job.id), "Regenerate (new quote)"
        )
        await surface.upload(
            ImageUpload(
                image.data, image.filename, image.mime, caption, image.badges, (regenerate,)
            )
        )
        return
    if outcome.kind == "reconfirm" and outcome.quote is not None:
        await surface.notify(outcome.message)
        await surface.offer(
            quote_offer(outcome.quote, engine.catalog, ttl_minutes=_minutes(engine))
        )
        return
    await surface.notify(outcome.message)


def closing(outcome: Outcome | None, actor: Actor, button_id: str) -> str | None:
    """The line the clicked quote shows in place of its buttons once it can do nothing more;
    None: it stays as it is (still open, or the click was not its requester's on its job)."""
    job = outcome.job if outcome is not None else None
    if outcome is None or job is None or outcome.kind == "not_yours":
        return None
    if job.user_id != actor.user_id or f":{job.id}" not in button_id:
        return None
    # The job an expired click returns may predate the expiry it caused.
    return outcome_line(job, "expired" if outcome.kind == "expired" else None)


def _minutes(engine: ImageEngine) -> int:
    return max(1, round(engine.quote_ttl / 60))
