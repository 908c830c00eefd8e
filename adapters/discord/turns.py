"""One chat turn on Discord: where it is answered, which conversation it continues, the links."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Any, Literal

import discord

from adapters.discord.image_surface import ChannelImageSurface
from adapters.discord.surface import DiscordSurface, Notify, RateLimitWatch, in_priority
from adapters.discord.views import reply_view
from bot.app import App
from bot.domain import Attachment, ChatOptions, ChatRequest, ConversationKey
from bot.engine.chat import TurnOutcome
from bot.ops.background import Background
from bot.pacing import LATER
from bot.store.records import Conversation
from bot.text import thread_name

log = logging.getLogger("parley.discord")

PLATFORM = "discord"
PLACEHOLDER = "…"
THREAD_ARCHIVE_MINUTES: Literal[1440] = 1440
TOKEN_MARGIN = 30.0
"""Seconds before an interaction's token expires when its messages switch to the bot token."""


def tenant_of(guild: discord.Guild | None) -> str:
    return str(guild.id) if guild is not None else "dm"


def key_for(channel: Any, guild: discord.Guild | None) -> ConversationKey:
    """The conversation a message in `channel` belongs to by place: a thread, a channel or a DM."""
    if isinstance(channel, discord.Thread):
        return ConversationKey(PLATFORM, tenant_of(guild), str(channel.parent_id), str(channel.id))
    return ConversationKey(PLATFORM, tenant_of(guild), str(getattr(channel, "id", "")))


class PendingThread:
    """The thread being opened on a reply's first message: what is posted into it waits until
    Discord has made it. If Discord refuses the thread, posts go to its parent channel."""

    def __init__(self, parent: discord.TextChannel, opening: asyncio.Task[discord.Thread]) -> None:
        self.parent = parent
        self._opening = opening
        self._refused = False

    async def opened(self) -> discord.TextChannel | discord.Thread:
        try:
            return await asyncio.shield(self._opening)
        except discord.HTTPException as exc:
            if not self._refused:  # said once, however many posts fall back
                self._refused = True
                log.warning("could not open a thread in channel %s: %s", self.parent.id, exc)
            return self.parent

    async def send(self, *args: Any, **kwargs: Any) -> discord.Message:
        return await (await self.opened()).send(*args, **kwargs)


def attachment_of(file: discord.Attachment) -> Attachment:
    """A file on Discord's CDN, as the core reads it (a voice message with its length)."""
    return Attachment(file.filename, file.size, file.content_type or "", url=file.url,
                      voice=file.is_voice_message(), seconds=file.duration or 0.0)  # fmt: skip


@dataclass(frozen=True, slots=True)
class Asker:
    id: str
    name: str
    files: tuple[Attachment, ...] = ()
    """What the message came with, as links on Discord's CDN."""


class Turns:
    def __init__(self, app: App, watch: RateLimitWatch) -> None:
        self.app = app
        self.watch = watch
        self.background = Background("discord")
        """Tasks inside a turn (answering, then linking) or a click: shutdown waits for them."""

    async def in_new_thread(
        self,
        channel: discord.TextChannel,
        prompt: str,
        asker: Asker,
        *,
        model: str | None = None,
        persona: str | None = None,
        reference: discord.Message | None = None,
        interaction: discord.Interaction[Any] | None = None,
    ) -> TurnOutcome:
        """Post a placeholder reply, open a thread on it, and answer there as a new conversation.

        For a /chat the placeholder is a followup of its `interaction`, so the reply streams
        through the interaction's webhook (outside Discord's global request limit). The thread
        opens while the answer starts: its id is the placeholder's, and only what overflows the
        first message waits for it.
        """
        webhook_until = 0.0
        if interaction is not None:
            placeholder: discord.Message = await interaction.followup.send(
                view=reply_view(PLACEHOLDER), wait=True
            )
            webhook_until = interaction.expires_at.timestamp() - TOKEN_MARGIN
        else:
            placeholder = await channel.send(view=reply_view(PLACEHOLDER), reference=reference)  # type: ignore[arg-type]
        # Opening the thread waits for its global slot behind the replies' texts: until what
        # overflows the first message needs it, nobody is waiting for it.
        opening = in_priority(
            LATER,
            channel.get_partial_message(placeholder.id).create_thread(
                name=thread_name(prompt), auto_archive_duration=THREAD_ARCHIVE_MINUTES
            ),
        )
        thread = PendingThread(channel, opening)
        key = ConversationKey(PLATFORM, str(channel.guild.id), str(channel.id), str(placeholder.id))
        with self.background.held():  # until the thread is open, too
            try:
                if model:  # the new thread's (the core gives it the channel's otherwise)
                    await self.app.engine.set_model(key, asker.id, model)
                # Linked at once, so a quick reply to the placeholder already finds the
                # conversation.
                conversation = await self.app.store.ensure_conversation(key, asker.id, prompt)
                await self.app.store.link_platform_message(
                    key, str(placeholder.id), conversation.id
                )
                surface = DiscordSurface(
                    thread,  # type: ignore[arg-type]
                    key.thread or "",
                    self.watch,
                    placeholder=placeholder,
                    webhook_until=webhook_until,
                )
                return await self.answer(key, prompt, asker, surface, thread, persona=persona)  # type: ignore[arg-type]
            finally:
                await thread.opened()

    async def in_place(
        self,
        key: ConversationKey,
        channel: discord.abc.Messageable,
        prompt: str,
        asker: Asker,
        *,
        model: str | None = None,
        persona: str | None = None,
        reference: discord.Message | None = None,
        notify: Notify | None = None,
    ) -> TurnOutcome:
        """Answer in `channel` (a thread, a DM, or a channel for a reply) in conversation `key`."""
        if model:  # in a DM the DM's own conversation, which is the asker's
            await self.app.engine.set_model(key, asker.id, model, dm=key.tenant == tenant_of(None))
        channel_id = str(getattr(channel, "id", key.channel))
        surface = DiscordSurface(
            channel, channel_id, self.watch, reference=reference, notify=notify
        )
        return await self.answer(key, prompt, asker, surface, channel, persona=persona)

    async def answer(
        self,
        key: ConversationKey,
        prompt: str,
        asker: Asker,
        surface: DiscordSurface,
        channel: discord.abc.Messageable,
        *,
        persona: str | None = None,
    ) -> TurnOutcome:
        request = ChatRequest(key, asker.id, prompt, ChatOptions(), asker.name, asker.files)
        # Image quotes from the model's generate_image tool go to the turn's own thread.
        images = ChannelImageSurface(channel, asker.name) if self.app.images else None
        with self.background.held():
            outcome = await self.app.engine.handle(request, surface, persona=persona, images=images)
            await self.link(key, outcome)
        return outcome

    async def link(self, key: ConversationKey, outcome: TurnOutcome) -> None:
        """Remember the reply's messages so a reply to any of them continues this conversation."""
        if outcome.conversation_id is None:
            return
        await self.app.store.link_platform_message(
            key,
            [ref.id for ref in outcome.refs],
            outcome.conversation_id,
            turn_id=outcome.message_id,
        )

    async def conversation_replied_to(
        self, guild: discord.Guild | None, message: discord.Message
    ) -> Conversation | None:
        reference = message.reference
        if reference is None or reference.message_id is None:
            return None
        return await self.app.store.conversation_for_message(
            PLATFORM, tenant_of(guild), str(reference.message_id)
        )
