"""Which quality tier a prompt asks for: the user's explicit choice, else the prompt's keywords."""

from __future__ import annotations

import re

from bot.images.catalog import TIERS, ImageCatalog, Tier


def choose_tier(prompt: str, catalog: ImageCatalog, explicit: str | None = None) -> Tier:
    """Explicit wins; otherwise the first tier (in the catalog's order) with a keyword in the
    prompt, matched as whole words, case-insensitively; otherwise the catalog's default tier."""
    if explicit:
        wanted = explicit.strip().lower()
        for tier in TIERS:
            if tier == wanted:
                return tier
        raise ValueError(f"unknown quality {explicit!r}: choose one of {', '.join(TIERS)}")
    text = prompt.lower()
    for tier in catalog.tier_order:
        for keyword in catalog.keywords[tier]:
            if re.search(rf"(?<![\w-]){re.escape(keyword)}(?![\w-])", text):
                return tier
    return catalog.default_tier
