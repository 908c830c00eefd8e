"""/usage [scope: me|server]: the core's UsageCommands, always ephemeral."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

import discord
from discord import app_commands

from adapters.discord.access import Access
from adapters.discord.private import start
from adapters.discord.replies import answer, caller_and_place
from bot.app import App
from bot.commands import UsageCommands

if TYPE_CHECKING:
    from adapters.discord.client import ParleyClient


class Usage:
    def __init__(self, app: App, access: Access) -> None:
        self.access = access
        self.commands = UsageCommands(app.usage)

    def register(self, tree: app_commands.CommandTree[ParleyClient]) -> None:
        @tree.command(name="usage", description="Tokens and spend today and this month")
        @app_commands.describe(scope="me (default), or the whole server (admins)")
        async def usage(
            interaction: discord.Interaction[Any], scope: Literal["me", "server"] = "me"
        ) -> None:
            await start(interaction)
            caller, place = caller_and_place(self.access, interaction)
            reply = await self.commands.usage(caller, place, tenant=scope == "server")
            await answer(interaction, reply)
