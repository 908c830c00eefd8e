"""Platform-neutral view models for the image flow: prices as text, button ids, captions."""

from __future__ import annotations

from decimal import ROUND_UP, Decimal

from bot.images.catalog import ImageCatalog
from bot.markup import MARKDOWN, Markup
from bot.ports import ImageButton, QuoteOffer
from bot.store.records import ImageJob

PREFIX = "img"
_VERBS = {"confirm": "c", "alternative": "a", "cancel": "x", "regenerate": "r"}
_ACTIONS = {v: k for k, v in _VERBS.items()}


def format_usd(amount: Decimal) -> str:
    """At least four decimals ("$0.0400"), more when needed for two significant digits
    ("$0.00064"); rounded up so the button never understates the price."""
    if amount == 0:
        return "$0.00"
    places = 4
    while amount < Decimal(10) ** (1 - places) and places < 9:
        places += 1
    return "$" + str(amount.quantize(Decimal(10) ** -places, rounding=ROUND_UP))


def custom_id(action: str, ref: str, index: int | None = None) -> str:
    """ "img:c:<quote>", "img:a:<quote>:<n>", "img:x:<quote>", "img:r:<job>" (≤ 40 chars)."""
    parts = [PREFIX, _VERBS[action], ref]
    if index is not None:
        parts.append(str(index))
    return ":".join(parts)


def parse_custom_id(value: str) -> tuple[str, str, int | None] | None:
    """(action, id, alternative index) from a button id, or None if it is not ours."""
    parts = value.split(":")
    if len(parts) not in (3, 4) or parts[0] != PREFIX or parts[1] not in _ACTIONS:
        return None
    index = None
    if len(parts) == 4:
        if not parts[3].isdigit():
            return None
        index = int(parts[3])
    return _ACTIONS[parts[1]], parts[2], index


def _label(catalog: ImageCatalog, entry: str, fallback: str) -> str:
    model = catalog.get(entry)
    return model.display if model is not None else fallback


def quote_offer(job: ImageJob, catalog: ImageCatalog, *, ttl_minutes: int) -> QuoteOffer:
    label = _label(catalog, job.entry, job.model)
    lines = [
        f"**Image quote** — {label} ({job.provider}), {job.size}, {job.tier} quality",
        f"> {job.prompt[:300]}",
        f"Nothing is charged until you click Generate. The quote is valid for {ttl_minutes} min.",
    ]
    buttons = [
        ImageButton(
            "confirm",
            custom_id("confirm", job.id),
            f"Generate for {format_usd(job.estimate)}",
            True,
        )
    ]
    for n, alt in enumerate(job.alternatives):
        name = _label(catalog, alt.entry, alt.model)
        buttons.append(
            ImageButton(
                "alternative",
                custom_id("alternative", job.id, n),
                f"{name} ({alt.tier}) — {format_usd(alt.estimate)}",
            )
        )
    buttons.append(ImageButton("cancel", custom_id("cancel", job.id), "Cancel"))
    return QuoteOffer(job.id, "\n".join(lines), tuple(buttons), job.expires_at)


def history_text(jobs: list[ImageJob]) -> str:
    """/images: recent generations with prompt, provider, cost and date."""
    if not jobs:
        return "No images yet. Try `/image prompt:<what you want>`."
    lines = ["**Your recent images**"]
    for job in jobs:
        when = (job.claimed_at or job.created_at).strftime("%Y-%m-%d %H:%M UTC")
        cost = job.cost if job.cost is not None else job.confirmed_estimate
        price = format_usd(cost) if cost is not None else "—"
        prompt = job.prompt if len(job.prompt) <= 60 else job.prompt[:59] + "…"
        lines.append(
            f"• {when} · {job.used_provider or job.provider} · {price} · {job.status} · {prompt}"
        )
    return "\n".join(lines)


_SETTLED = {
    "cancelled": "✖️ Cancelled; nothing was charged.",
    "expired": "⌛ This quote expired; nothing was charged.",
    "failed": "⚠️ No image could be made; nothing was charged.",
    "refused": "⚠️ The provider refused this prompt; nothing was charged.",
    "unknown": "❓ The outcome is unknown (it may have been charged); not retried.",
    "superseded": "↪️ The price changed: see the new quote.",
}


def outcome_line(job: ImageJob, status: str | None = None) -> str | None:
    """What a settled quote shows in place of its buttons (`status` overrides the job's, e.g.
    "expired" for a quote found expired on click); None while it is still open."""
    status = status or job.status
    if status == "succeeded":
        cost = format_usd(job.cost) if job.cost is not None else "?"
        line = f"✅ Generated with {job.used_model} ({job.used_provider}) for {cost}"
        if job.fallback_from:
            line += f" · ⚠️ fallback used (instead of {job.fallback_from})"
        return line
    return _SETTLED.get(status)


NOTICE_PROMPT_CHARS = 80
"""How much of a prompt an unknown-outcome notice quotes."""


def unknown_notice(job: ImageJob, markup: Markup = MARKDOWN) -> str:
    """The requester's notice about a paid image cut off by a restart."""
    prompt = " ".join(job.prompt.split())
    if len(prompt) > NOTICE_PROMPT_CHARS:
        prompt = prompt[: NOTICE_PROMPT_CHARS - 1].rstrip() + "…"
    return (
        f"⚠️ {markup.mention(job.user_id)} the image for “{markup.text(prompt)}” was interrupted"
        " when Parley restarted. Its outcome is unknown (it may have been charged), so it was"
        " not retried. Use /images to see it."
    )
