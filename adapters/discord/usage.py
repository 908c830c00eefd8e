"""/usage [scope: me|server]: tokens and spend today and this month, always ephemeral."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

import discord
from discord import app_commands

from adapters.discord.access import Access, is_admin
from adapters.discord.private import fit, say, start
from adapters.discord.turns import key_for
from bot.app import App
from bot.engine.usage import NotAllowed, UsageReport, format_usage
from bot.markup import DISCORD

if TYPE_CHECKING:
    from adapters.discord.client import ParleyClient

UNAVAILABLE = "Usage is not available on this bot."


def render(report: UsageReport, *, title: str) -> str:
    """Top users as Discord mentions (allowed_mentions is none: no ping)."""
    return fit(format_usage(report, title=title, markup=DISCORD))


class Usage:
    def __init__(self, app: App, access: Access) -> None:
        self.app = app
        self.access = access

    def register(self, tree: app_commands.CommandTree[ParleyClient]) -> None:
        @tree.command(name="usage", description="Tokens and spend today and this month")
        @app_commands.describe(scope="me (default), or the whole server (admins)")
        async def usage(
            interaction: discord.Interaction[Any], scope: Literal["me", "server"] = "me"
        ) -> None:
            await self.usage(interaction, scope)

    async def usage(self, interaction: discord.Interaction[Any], scope: str = "me") -> None:
        await start(interaction)
        if self.app.usage is None or interaction.channel is None:
            await say(interaction, UNAVAILABLE)
            return
        key = key_for(interaction.channel, interaction.guild)
        if scope == "server":
            if interaction.guild_id is None:
                await say(interaction, "There is no server here; try `/usage scope:me`.")
                return
            try:
                report = await self.app.usage.tenant_summary(
                    key, is_admin=is_admin(self.access, interaction)
                )
            except NotAllowed as exc:
                await say(interaction, str(exc))
                return
            await say(interaction, render(report, title="This server's usage"))
            return
        report = await self.app.usage.user_summary(key, str(interaction.user.id))
        await say(interaction, render(report, title="Your usage"))
