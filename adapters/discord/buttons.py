"""What Stop and Regenerate do. Only the asker may press them; anyone else is told so privately."""

from __future__ import annotations

import contextlib
import logging
from typing import Any

import discord

from adapters.discord.image_surface import ChannelImageSurface
from adapters.discord.surface import DiscordSurface
from adapters.discord.turns import Turns, awaited_at_shutdown
from bot.app import App
from bot.engine.chat import StopResult, why_not_running
from bot.store.records import StoredMessage

log = logging.getLogger("parley.discord")

NOT_YOURS = "That's not yours: only the person who asked can use these buttons."
EXPIRED = "This button has expired: that reply is no longer stored."


class Buttons:
    def __init__(self, app: App, turns: Turns, client: discord.Client) -> None:
        self.app = app
        self.turns = turns
        self.client = client

    async def _asker_of(self, turn_id: int) -> tuple[StoredMessage | None, str | None]:
        turn = await self.app.store.get_message(turn_id)
        if turn is None or turn.role != "assistant" or turn.parent_id is None:
            return None, None
        parent = await self.app.store.get_message(turn.parent_id)
        return turn, (parent.user_id if parent else None)

    async def stop(self, interaction: discord.Interaction[Any], turn_id: int) -> None:
        user = str(interaction.user.id)
        result = self.app.engine.stop(turn_id, user)
        if result is StopResult.STOPPED:
            await interaction.response.defer()  # the streamer puts the final text in place
            return
        if result is StopResult.NOT_YOURS:
            await interaction.response.send_message(NOT_YOURS, ephemeral=True)
            return
        await interaction.response.defer(ephemeral=True, thinking=True)
        turn, asker = await self._asker_of(turn_id)
        if turn is None:
            text = EXPIRED
        elif asker != user:
            text = NOT_YOURS
        else:
            text = why_not_running(turn)
        await interaction.edit_original_response(content=text)

    async def regenerate(self, interaction: discord.Interaction[Any], turn_id: int) -> None:
        with awaited_at_shutdown(self.turns.active):  # shutdown waits for the answer and its link
            await self._regenerate(interaction, turn_id)

    async def _regenerate(self, interaction: discord.Interaction[Any], turn_id: int) -> None:
        user = str(interaction.user.id)
        await interaction.response.defer(ephemeral=True, thinking=True)
        turn, asker = await self._asker_of(turn_id)
        if turn is None:
            await interaction.edit_original_response(content=EXPIRED)
            return
        if asker != user:
            await interaction.edit_original_response(content=NOT_YOURS)
            return
        conversation = await self.app.store.get_conversation_by_id(turn.conversation_id)
        if conversation is None:
            await interaction.edit_original_response(content=EXPIRED)
            return
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
