"""Who may use Parley where, and who administers it: the operator's allow-lists and admin rule.

The adapter says what the platform knows (the user, the server, the channel and its parent, the
member's roles, whether they may manage the server); the rule is decided here, once.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from bot.config import Settings

NOT_ALLOWED = "Parley isn't enabled for you here."
NOWHERE = "I can't tell where this is."
"""A command that came from no channel the platform names (Discord: a channel-less interaction)."""


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
