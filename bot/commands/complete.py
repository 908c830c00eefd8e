"""What an option completes from as it is typed (Discord's autocomplete): the choices are the
core's, so every platform that completes offers the same ones."""

from __future__ import annotations

from bot.catalog import Catalog
from bot.domain import ConversationKey
from bot.engine.personas import PersonaService

MAX_CHOICES = 25
"""Discord shows at most 25 choices."""


async def choices(
    kind: str,
    typed: str,
    *,
    catalog: Catalog,
    personas: PersonaService | None,
    place: ConversationKey | None,
) -> list[tuple[str, str]]:
    """(label, value) pairs of a `model` option (catalog names or display names containing the
    text) or a `persona` option (the tenant's persona names containing it)."""
    needle = typed.lower().strip()
    found: list[tuple[str, str]] = []
    if kind == "model":
        labels = ((f"{entry.name} — {entry.display}", entry.name) for entry in catalog)
        found = [(label, name) for label, name in labels if needle in label.lower()]
    elif kind == "persona" and personas is not None and place is not None:
        found = [(p.name, p.name) for p in await personas.list(place) if needle in p.name]
    return found[:MAX_CHOICES]
