"""Stop, Regenerate, Approve and Deny clicks into the core's ReplyControls (who may press them, and
what the others are told, privately) and, for Regenerate, the engine."""

from __future__ import annotations

import contextlib
import logging
from typing import Any

import discord

from adapters.discord.image_surface import ChannelImageSurface
from adapters.discord.replies import caller_and_place, tell
from adapters.discord.surface import DiscordSurface
from adapters.discord.turns import Turns
from bot.app import App
from bot.commands.access import Access
from bot.commands.controls import ReplyControls
from bot.sorry import apologize

log = logging.getLogger("parley.discord")


class Buttons:
    def __init__(self, app: App, turns: Turns, client: discord.Client, access: Access) -> None:
        self.app = app
        self.turns = turns
        self.client = client
        self.access = access
        self.controls = ReplyControls(app.engine, app.store)

    async def press(self, interaction: discord.Interaction[Any], action: str, turn_id: int) -> None:
        """Stop, Approve or Deny: the core says whether the clicker is told why not."""
        try:
            caller, _ = caller_and_place(self.access, interaction)
            reply = await self.controls.press(caller, action, turn_id)
        except Exception as exc:  # a button is not under the tree's on_error
            await tell(interaction, apologize(log, exc, "%s click", action))
            return
        if reply is None:
            await interaction.response.defer()
        else:
            await interaction.response.send_message(reply.plain(), ephemeral=True)

    async def regenerate(self, interaction: discord.Interaction[Any], turn_id: int) -> None:
        with self.turns.background.held():  # shutdown waits for the answer and its link
            await interaction.response.defer(ephemeral=True, thinking=True)
            try:
                await self._regenerate(interaction, turn_id)
            except Exception as exc:  # a button is not under the tree's on_error
                await tell(interaction, apologize(log, exc, "regenerate click turn=%s", turn_id))

    async def _regenerate(self, interaction: discord.Interaction[Any], turn_id: int) -> None:
        user = str(interaction.user.id)
        caller, _ = caller_and_place(self.access, interaction)
        conversation = await self.controls.regenerable(caller, turn_id)
        channel: Any = interaction.channel
        if conversation.thread_id:
            channel = self.client.get_channel(int(conversation.thread_id)) or (
                await self.client.fetch_channel(int(conversation.thread_id))
            )
        await interaction.edit_original_response(content="Regenerating…")

        async def notify(text: str) -> None:
            await interaction.edit_original_response(content=text)

        key = conversation.key
        surface = DiscordSurface(channel, str(channel.id), self.turns.watch, notify=notify)
        images = (
            ChannelImageSurface(channel, interaction.user.display_name) if self.app.images else None
        )
        outcome = await self.app.engine.regenerate(turn_id, user, surface, images=images)
        await self.turns.link(key, outcome)
        if outcome.error is None:
            with contextlib.suppress(discord.HTTPException):
                await interaction.delete_original_response()
