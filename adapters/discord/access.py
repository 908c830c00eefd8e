"""Who may use the bot where: allow-lists of guilds, channels, roles and users; the admin role.

`admit` is the one gate every interaction passes: the command tree's `interaction_check` (slash
commands and their autocomplete) and every button's (views.Gated). A refused interaction is
answered here, so nothing behind the gate runs: no LLM call, no image, no store read.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import discord

from bot.config import Settings

NOT_ALLOWED = "Parley isn't enabled for you here."


@dataclass(frozen=True, slots=True)
class Access:
    guilds: frozenset[str]
    channels: frozenset[str]
    roles: frozenset[str]
    users: frozenset[str]
    allow_dms: bool
    admin_role: str | None

    @classmethod
    def from_settings(cls, settings: Settings) -> Access:
        return cls(
            frozenset(settings.discord_allowed_guilds),
            frozenset(settings.discord_allowed_channels),
            frozenset(settings.discord_allowed_roles),
            frozenset(settings.discord_allowed_users),
            settings.discord_allow_dms,
            settings.discord_admin_role or None,
        )

    def allows(
        self,
        *,
        user_id: str,
        guild_id: str | None,
        channel_ids: Iterable[str] = (),
        roles: Iterable[str] = (),
    ) -> bool:
        """An empty list allows everyone; in DMs only DISCORD_ALLOW_DMS and the user list apply.

        `channel_ids` holds the channel and, in a thread, its parent: allowing a channel allows
        its threads. `roles` holds role ids and names, either may be listed.
        """
        if self.users and user_id not in self.users:
            return False
        if guild_id is None:
            return self.allow_dms
        if self.guilds and guild_id not in self.guilds:
            return False
        if self.channels and not self.channels.intersection(channel_ids):
            return False
        return not self.roles or bool(self.roles.intersection(roles))

    def is_admin(self, roles: Iterable[str], *, in_guild: bool, manage_guild: bool) -> bool:
        """Admin of the bot in a server (personas, channels' models and default personas, server
        usage): Manage Server (or Administrator), or DISCORD_ADMIN_ROLE when it is set. Nobody is
        an admin in DMs."""
        if not in_guild:
            return False
        return manage_guild or (self.admin_role is not None and self.admin_role in set(roles))


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
