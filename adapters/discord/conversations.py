"""/history, /archive, /export and /new: options in, the core's ConversationCommands out."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import discord
from discord import app_commands

from adapters.discord.access import Access
from adapters.discord.private import start
from adapters.discord.replies import announce, answer, caller_and_place, client_channel, tell
from bot.app import App
from bot.commands import ConversationCommands
from bot.commands.conversations import MAX_PAGE
from bot.sorry import apologize

if TYPE_CHECKING:
    from adapters.discord.client import ParleyClient
    from bot.domain import ConversationKey

log = logging.getLogger("parley.discord")

MAX_ID = 2**53  # Discord integer options are JSON numbers
THREAD_CLOSED = " The thread is archived too."
THREAD_OPEN = " I couldn't archive the Discord thread itself."


class Conversations:
    def __init__(self, app: App, access: Access) -> None:
        self.access = access
        self.commands = ConversationCommands(app.conversations)

    def register(self, tree: app_commands.CommandTree[ParleyClient]) -> None:
        named = "An id from /history (default: the conversation of this thread)"

        @tree.command(name="history", description="Your conversations in this server, newest first")
        @app_commands.describe(page="Page number (default 1)")
        async def history(
            interaction: discord.Interaction[Any],
            page: app_commands.Range[int, 1, MAX_PAGE] = 1,
        ) -> None:
            await start(interaction)
            await self.show_page(interaction, page)

        @tree.command(name="archive", description="Archive a conversation: I stop answering in it")
        @app_commands.describe(conversation=named, close_thread="Also archive the Discord thread")
        async def archive(
            interaction: discord.Interaction[Any],
            conversation: app_commands.Range[int, 1, MAX_ID] | None = None,
            close_thread: bool = False,
        ) -> None:
            await self.archive(interaction, conversation, close_thread)

        @tree.command(name="export", description="Download a conversation as a Markdown file")
        @app_commands.describe(conversation=named)
        async def export(
            interaction: discord.Interaction[Any],
            conversation: app_commands.Range[int, 1, MAX_ID] | None = None,
        ) -> None:
            await start(interaction)
            caller, place = caller_and_place(self.access, interaction)
            await answer(interaction, await self.commands.export(caller, place, conversation))

        @tree.command(name="new", description="Start a fresh context in a conversation")
        @app_commands.describe(conversation=named)
        async def new(
            interaction: discord.Interaction[Any],
            conversation: app_commands.Range[int, 1, MAX_ID] | None = None,
        ) -> None:
            await start(interaction)
            caller, place = caller_and_place(self.access, interaction)
            await answer(interaction, await self.commands.new(caller, place, conversation))

    async def turn_page(self, interaction: discord.Interaction[Any], page: int) -> None:
        """Previous / Next: edit the same ephemeral message in place."""
        await interaction.response.defer()
        try:
            await self.show_page(interaction, page)
        except Exception as exc:  # a button is not under the tree's on_error
            await tell(interaction, apologize(log, exc, "history page %s", page))

    async def show_page(self, interaction: discord.Interaction[Any], page: int) -> None:
        caller, place = caller_and_place(self.access, interaction)
        await answer(interaction, await self.commands.history(caller, place, page))

    async def archive(
        self, interaction: discord.Interaction[Any], conversation: int | None, close_thread: bool
    ) -> None:
        await start(interaction)
        caller, place = caller_and_place(self.access, interaction)
        reply = await self.commands.archive(caller, place, conversation)
        await announce(interaction, reply)  # before the thread closes: a post would reopen it
        said = await self._close(interaction, reply.target) if close_thread else ""
        await answer(interaction, reply, suffix=said, announced=True)

    async def _close(
        self, interaction: discord.Interaction[Any], target: ConversationKey | None
    ) -> str:
        """Archive the conversation's Discord thread too; what to add to the reply."""
        thread = target.thread if target is not None else ""
        here = interaction.channel
        where = here if here and str(here.id) == thread else None
        if thread and where is None:
            where = client_channel(interaction, thread)
        if not isinstance(where, discord.Thread):
            return ""
        try:
            await where.edit(archived=True)
        except discord.HTTPException as exc:
            log.warning("could not archive thread %s: %s", where.id, exc)
            return THREAD_OPEN
        return THREAD_CLOSED
