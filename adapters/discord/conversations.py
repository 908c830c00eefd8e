"""/history, /archive, /export and /new: a user's own conversations, through the core's
ConversationService (which decides isolation: only your conversations, only in this server)."""

from __future__ import annotations

import io
import logging
from typing import TYPE_CHECKING, Any

import discord
from discord import app_commands

from adapters.discord.access import Access, is_admin
from adapters.discord.private import fit, say, start
from adapters.discord.turns import key_for
from adapters.discord.views import history_view
from bot.app import App
from bot.domain import ConversationKey
from bot.engine.conversations import ConversationError, ConversationService, HistoryPage

if TYPE_CHECKING:
    from adapters.discord.client import ParleyClient

log = logging.getLogger("parley.discord")

UNAVAILABLE = "Conversation commands are not available on this bot."
NOWHERE = "I can't tell where this is."
TITLE_MAX = 60
MAX_ID = 2**53  # Discord integer options are JSON numbers


def thread_link(guild_id: int | None, summary_channel: str, summary_thread: str) -> str:
    where = summary_thread or summary_channel
    return f"https://discord.com/channels/{guild_id or '@me'}/{where}"


def render_history(page: HistoryPage, guild_id: int | None) -> str:
    if not page.items:
        if page.page == 1:
            return "You have no conversations in this server yet. Start one with /chat."
        return f"Page {page.page} is empty."
    lines = [f"**Your conversations here** (page {page.page}, newest first)"]
    for n, item in enumerate(page.items, (page.page - 1) * page.page_size + 1):
        title = " ".join(item.title.replace("[", "(").replace("]", ")").split())
        if len(title) > TITLE_MAX:
            title = title[: TITLE_MAX - 1] + "…"
        when = f"<t:{int(item.last_message_at.timestamp())}:R>" if item.last_message_at else "never"
        link = thread_link(guild_id, item.channel_id, item.thread_id)
        lines.append(
            f"{n}. [{title}]({link}) · {item.message_count} messages · {when} · id `{item.id}`"
        )
    lines.append("-# /export or /archive take the id; inside a thread they need none.")
    return fit("\n".join(lines))


class Conversations:
    def __init__(self, app: App, access: Access) -> None:
        self.app = app
        self.access = access

    def register(self, tree: app_commands.CommandTree[ParleyClient]) -> None:
        @tree.command(name="history", description="Your conversations in this server, newest first")
        @app_commands.describe(page="Page number (default 1)")
        async def history(
            interaction: discord.Interaction[Any],
            page: app_commands.Range[int, 1, 100_000] = 1,
        ) -> None:
            await self.history(interaction, page)

        @tree.command(name="archive", description="Archive a conversation: I stop answering in it")
        @app_commands.describe(
            conversation="An id from /history (default: the conversation of this thread)",
            close_thread="Also archive the Discord thread",
        )
        async def archive(
            interaction: discord.Interaction[Any],
            conversation: app_commands.Range[int, 1, MAX_ID] | None = None,
            close_thread: bool = False,
        ) -> None:
            await self.archive(interaction, conversation, close_thread)

        @tree.command(name="export", description="Download a conversation as a Markdown file")
        @app_commands.describe(
            conversation="An id from /history (default: the conversation of this thread)"
        )
        async def export(
            interaction: discord.Interaction[Any],
            conversation: app_commands.Range[int, 1, MAX_ID] | None = None,
        ) -> None:
            await self.export(interaction, conversation)

        @tree.command(name="new", description="Start a fresh context in this thread")
        async def new(interaction: discord.Interaction[Any]) -> None:
            await self.new(interaction)

    def _ready(
        self, interaction: discord.Interaction[Any]
    ) -> tuple[ConversationService, ConversationKey] | str:
        """The service and the key of the place the command came from, or what to say instead."""
        if self.app.conversations is None:
            return UNAVAILABLE
        if interaction.channel is None:
            return NOWHERE
        return self.app.conversations, key_for(interaction.channel, interaction.guild)

    async def history(self, interaction: discord.Interaction[Any], page: int = 1) -> None:
        await start(interaction)
        await self._show_page(interaction, page)

    async def turn_page(self, interaction: discord.Interaction[Any], page: int) -> None:
        """Previous / Next: edit the same ephemeral message in place."""
        await interaction.response.defer()
        await self._show_page(interaction, page)

    async def _show_page(self, interaction: discord.Interaction[Any], page: int) -> None:
        ready = self._ready(interaction)
        if isinstance(ready, str):
            await say(interaction, ready)
            return
        service, scope = ready
        found = await service.history(scope, str(interaction.user.id), page=page)
        text = render_history(found, interaction.guild_id)
        view = history_view(found.page, found.has_more)
        if view is None:
            await interaction.edit_original_response(content=text, view=None)
        else:
            await interaction.edit_original_response(content=text, view=view)

    async def archive(
        self,
        interaction: discord.Interaction[Any],
        conversation_id: int | None = None,
        close_thread: bool = False,
    ) -> None:
        await start(interaction)
        ready = self._ready(interaction)
        if isinstance(ready, str):
            await say(interaction, ready)
            return
        service, key = ready
        user = str(interaction.user.id)
        thread: Any = None
        try:
            if conversation_id is None:
                await service.archive(key, user, is_admin=is_admin(self.access, interaction))
                thread = interaction.channel
            else:
                archived = await service.archive_by_id(key, user, conversation_id)
                if close_thread and archived.thread_id:
                    thread = interaction.client.get_channel(int(archived.thread_id))
        except ConversationError as exc:
            await say(interaction, str(exc))
            return
        log.info("conversation archived key=%s by=%s id=%s", key, user, conversation_id)
        text = "Archived: I no longer answer in that conversation, and it left /history."
        if close_thread and isinstance(thread, discord.Thread):
            try:
                await thread.edit(archived=True)
                text += " The thread is archived too."
            except discord.HTTPException as exc:
                log.warning("could not archive thread %s: %s", thread.id, exc)
                text += " I couldn't archive the Discord thread itself."
        await say(interaction, text)

    async def export(
        self, interaction: discord.Interaction[Any], conversation_id: int | None = None
    ) -> None:
        await start(interaction)
        ready = self._ready(interaction)
        if isinstance(ready, str):
            await say(interaction, ready)
            return
        service, key = ready
        user = str(interaction.user.id)
        try:
            if conversation_id is None:
                exported = await service.export(key, user)
            else:
                exported = await service.export_by_id(key, user, conversation_id)
        except ConversationError as exc:
            await say(interaction, str(exc))
            return
        file = discord.File(io.BytesIO(exported.data), filename=exported.name)
        try:
            await say(interaction, "Here is the conversation as Markdown.", attachments=[file])
        except discord.HTTPException as exc:
            log.warning("export upload failed: %s", exc)
            too_big = exc.status == 413
            await say(
                interaction,
                "The export is too large to upload here."
                if too_big
                else "Sorry, I couldn't upload the export. Please try again.",
            )

    async def new(self, interaction: discord.Interaction[Any]) -> None:
        await start(interaction)
        ready = self._ready(interaction)
        if isinstance(ready, str):
            await say(interaction, ready)
            return
        service, key = ready
        try:
            fresh = await service.new_context(key, str(interaction.user.id))
        except ConversationError as exc:
            await say(interaction, str(exc))
            return
        await say(
            interaction,
            "Fresh start: from your next message I ignore everything said here before"
            " (it stays in /export)."
            if fresh
            else "There is no conversation of yours here to start over; just ask away.",
        )
