"""Replies a dead process left streaming, finished on Discord once the core has taken them over.

The core gives each turn's saved text and the messages that showed it (channel and message
ids); they are edited with the bot token (an interaction's webhook is gone with its process),
end with the restart notice and Regenerate, and anything the text no longer fills keeps "…".
A turn cut off before its first text has no saved messages: if it was a conversation's first
turn, its placeholder is the thread's starter message (the thread id is that message's id),
linked to the conversation when it was posted.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import discord

from adapters.discord.surface import DiscordSurface, RateLimitWatch
from bot.ports import MessageRef
from bot.store import InterruptedTurn

if TYPE_CHECKING:
    from bot.app import App

log = logging.getLogger("parley.discord")

PLATFORM = "discord"


class Recovery:
    def __init__(self, app: App, client: discord.Client, watch: RateLimitWatch) -> None:
        self.app = app
        self.client = client
        self.watch = watch

    async def finish(self, turn: InterruptedTurn) -> None:
        """App.watch_interrupted_turns' callback: the turn ended where it was shown."""
        conversation = turn.conversation
        place = conversation.thread_id or conversation.channel_id
        refs = turn.refs or await self._placeholder(turn)
        shown = [
            self.client.get_partial_messageable(int(ref.channel)).get_partial_message(int(ref.id))
            for ref in refs
        ]
        surface = DiscordSurface(
            self.client.get_partial_messageable(int(place)), place, self.watch, shown=shown
        )
        await self.app.engine.finish_interrupted(
            InterruptedTurn(turn.message, conversation, turn.user_id, tuple(refs)), surface
        )
        log.info("interrupted turn finished on discord turn=%s", turn.message.id)

    async def _placeholder(self, turn: InterruptedTurn) -> tuple[MessageRef, ...]:
        """The starter message a thread's first reply would have filled, if it is ours."""
        conversation = turn.conversation
        thread = conversation.thread_id
        if not thread:
            return ()
        store = self.app.store
        linked = await store.conversation_for_message(PLATFORM, conversation.tenant, thread)
        if linked is None or linked.id != conversation.id:
            return ()  # a thread someone else started: its starter is not ours to edit
        history = await store.history(conversation.id, limit=conversation.message_count + 1)
        first = next((m for m in history if m.role == "assistant"), None)
        if first is None or first.id != turn.message.id:
            return ()  # a later turn posts its own messages; this one never showed any
        return (MessageRef(thread, conversation.channel_id),)
