"""One chat turn on Discord: where it is answered, which conversation it continues, the links."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Literal

import discord

from adapters.discord.image_surface import ChannelImageSurface
from adapters.discord.surface import DiscordSurface, Notify, RateLimitWatch
from bot.app import App
from bot.domain import ChatOptions, ChatRequest, ConversationKey
from bot.engine.chat import TurnOutcome
from bot.store.records import Conversation

log = logging.getLogger("parley.discord")

PLATFORM = "discord"
PLACEHOLDER = "…"
THREAD_NAME_MAX = 100
THREAD_ARCHIVE_MINUTES: Literal[1440] = 1440
FAILED = "Sorry, something went wrong on my side. Please try again."


def thread_name(prompt: str) -> str:
    """The first line of the prompt, whitespace collapsed, at most 100 characters."""
    text = re.sub(r"<@!?\d+>", "", prompt)
    text = " ".join(text.split()) or "Parley chat"
    return text if len(text) <= THREAD_NAME_MAX else text[: THREAD_NAME_MAX - 1].rstrip() + "…"


def tenant_of(guild: discord.Guild | None) -> str:
    return str(guild.id) if guild is not None else "dm"


def key_for(channel: Any, guild: discord.Guild | None) -> ConversationKey:
    """The conversation a message in `channel` belongs to by place: a thread, a channel or a DM."""
    if isinstance(channel, discord.Thread):
        return ConversationKey(PLATFORM, tenant_of(guild), str(channel.parent_id), str(channel.id))
    return ConversationKey(PLATFORM, tenant_of(guild), str(getattr(channel, "id", "")))


def key_of(conversation: Conversation) -> ConversationKey:
    tenant = conversation.tenant_id.removeprefix(f"{PLATFORM}:")
    return ConversationKey(PLATFORM, tenant, conversation.channel_id, conversation.thread_id)


@dataclass(frozen=True, slots=True)
class Asker:
    id: str
    name: str


@contextlib.contextmanager
def awaited_at_shutdown(active: set[asyncio.Task[Any]]) -> Iterator[None]:
    """Keep the current task in `active` (the work shutdown waits for) while the block runs."""
    task = asyncio.current_task()
    if task is not None:
        active.add(task)
    try:
        yield
    finally:
        if task is not None:
            active.discard(task)


class Turns:
    def __init__(self, app: App, watch: RateLimitWatch) -> None:
        self.app = app
        self.watch = watch
        self.active: set[asyncio.Task[Any]] = set()
        """Tasks inside a turn (answering, then linking): shutdown waits for them."""

    async def in_new_thread(
        self,
        channel: discord.TextChannel,
        prompt: str,
        asker: Asker,
        *,
        model: str | None = None,
        persona: str | None = None,
        reference: discord.Message | None = None,
    ) -> TurnOutcome:
        """Post a placeholder reply, open a thread on it, and answer there as a new conversation."""
        placeholder = await channel.send(PLACEHOLDER, reference=reference)  # type: ignore[arg-type]
        thread = await placeholder.create_thread(
            name=thread_name(prompt), auto_archive_duration=THREAD_ARCHIVE_MINUTES
        )
        key = ConversationKey(PLATFORM, str(channel.guild.id), str(channel.id), str(thread.id))
        await self._inherit_model(key, asker, model)
        # Linked at once, so a quick reply to the placeholder already finds the conversation.
        conversation = await self.app.store.ensure_conversation(key, asker.id, prompt)
        await self.app.store.link_platform_message(key, str(placeholder.id), conversation.id)
        surface = DiscordSurface(thread, str(thread.id), self.watch, placeholder=placeholder)
        return await self.answer(key, prompt, asker, surface, thread, persona=persona)

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
        if model:
            await self.app.engine.set_model(key, asker.id, model)
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
        request = ChatRequest(key, asker.id, prompt, ChatOptions(), user_name=asker.name)
        # Image quotes from the model's generate_image tool go to the turn's own thread.
        images = ChannelImageSurface(channel, asker.name) if self.app.images else None
        with awaited_at_shutdown(self.active):
            outcome = await self.app.engine.handle(request, surface, persona=persona, images=images)
            await self.link(key, outcome)
        return outcome

    async def wait_idle(self, grace: float) -> None:
        if self.active:
            await asyncio.wait(set(self.active), timeout=grace)

    async def link(self, key: ConversationKey, outcome: TurnOutcome) -> None:
        """Remember the reply's messages so a reply to any of them continues this conversation."""
        if outcome.conversation_id is None:
            return
        for ref in outcome.refs:
            await self.app.store.link_platform_message(
                key, ref.id, outcome.conversation_id, turn_id=outcome.message_id
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

    async def _inherit_model(self, key: ConversationKey, asker: Asker, model: str | None) -> None:
        """A new thread uses the model asked for, else the one chosen for its channel."""
        if not model:
            parent = ConversationKey(key.platform, key.tenant, key.channel)
            channel_conversation = await self.app.store.get_conversation(parent)
            model = channel_conversation.model if channel_conversation else None
        if model:
            await self.app.engine.set_model(key, asker.id, model)
