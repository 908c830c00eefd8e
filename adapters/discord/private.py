"""Private (ephemeral) command replies: acknowledge at once, then one short answer."""

from __future__ import annotations

from typing import Any

import discord

from adapters.discord.access import NOT_ALLOWED, Access
from adapters.discord.commands import allowed

MAX_CONTENT = 2000
CUT = "\n… (cut: too long to show here)"


def fit(text: str) -> str:
    """Discord's 2,000 characters, saying so when something was cut."""
    if len(text) <= MAX_CONTENT:
        return text
    return text[: MAX_CONTENT - len(CUT)].rstrip() + CUT


async def start(access: Access, interaction: discord.Interaction[Any]) -> bool:
    """Refuse whoever is not allowed here; else defer (ephemeral) within the 3-second window."""
    if not allowed(access, interaction):
        await interaction.response.send_message(NOT_ALLOWED, ephemeral=True)
        return False
    await interaction.response.defer(ephemeral=True, thinking=True)
    return True


async def say(interaction: discord.Interaction[Any], text: str, **extra: Any) -> None:
    await interaction.edit_original_response(content=fit(text), **extra)
