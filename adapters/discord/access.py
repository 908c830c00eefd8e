"""What Discord says of an interaction, for the core's Access rule (bot.commands.access).

`admit` is the one gate every interaction passes: the command tree's `interaction_check` (slash
commands and their autocomplete) and every button's (views.Gated). A refused interaction is
answered here, so nothing behind the gate runs: no LLM call, no image, no store read.
"""

from __future__ import annotations

from typing import Any

import discord

from bot.commands.access import NOT_ALLOWED, Access


def role_keys(user: discord.abc.User) -> list[str]:
    """A member's role ids and names (either may be configured)."""
    roles = getattr(user, "roles", [])
    return [str(r.id) for r in roles] + [r.name for r in roles]


def channel_ids(channel: Any) -> list[str]:
    ids = [str(channel.id)] if channel is not None else []
    parent = getattr(channel, "parent_id", None)
    return ids + ([str(parent)] if parent else [])


def allowed(access: Access, interaction: discord.Interaction[Any]) -> bool:
    return access.allows(
        user_id=str(interaction.user.id),
        guild_id=str(interaction.guild_id) if interaction.guild_id else None,
        channel_ids=channel_ids(interaction.channel),
        roles=role_keys(interaction.user),
    )


async def admit(access: Access, interaction: discord.Interaction[Any]) -> bool:
    """True when the allow-lists let this interaction through; else answer it and say False.

    Autocomplete is answered with no choices (it cannot carry a message); anything else gets
    NOT_ALLOWED, only to the clicker.
    """
    if allowed(access, interaction):
        return True
    if interaction.response.is_done():
        return False
    try:
        if interaction.type is discord.InteractionType.autocomplete:
            await interaction.response.autocomplete([])
        else:
            await interaction.response.send_message(NOT_ALLOWED, ephemeral=True)
    except discord.HTTPException:
        pass  # the token expired or Discord refused: the interaction is refused all the same
    return False


def is_admin(access: Access, interaction: discord.Interaction[Any]) -> bool:
    """Manage Server (or Administrator) in this server, or the configured admin role."""
    permissions = interaction.permissions
    return access.is_admin(
        role_keys(interaction.user),
        in_guild=interaction.guild_id is not None,
        manage_guild=permissions.manage_guild or permissions.administrator,
    )
