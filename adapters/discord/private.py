"""Private (ephemeral) command replies: acknowledge at once (`start`), within Discord's 2,000
characters (`fit`, which says when it cut)."""

from __future__ import annotations

from typing import Any

import discord

MAX_CONTENT = 2000
CUT = "\n… (cut: too long to show here)"


def fit(text: str) -> str:
    """Discord's 2,000 characters, saying so when something was cut."""
    if len(text) <= MAX_CONTENT:
        return text
    return text[: MAX_CONTENT - len(CUT)].rstrip() + CUT


async def start(interaction: discord.Interaction[Any]) -> None:
    """Defer (ephemeral) within the 3-second window; the tree's gate has admitted the user."""
    await interaction.response.defer(ephemeral=True, thinking=True)
