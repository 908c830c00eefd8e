"""Replies a dead process left streaming, finished on Slack once the core has taken them over.

The core gives each turn's saved text and the messages that showed it; they are rewritten with
post-and-edit (a native stream nobody stopped is stopped first: see SlackSurface.edit), end with
the restart notice and Regenerate, and the small Stop message a native stream had beside it is
deleted, found in the thread by its button.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from slack_sdk.errors import SlackApiError

from adapters.slack.blocks import action_id, buttons_in
from adapters.slack.surface import SlackSurface, Workspaces, slack_error
from bot.engine.note import NOTE_LINE
from bot.store import InterruptedTurn

if TYPE_CHECKING:
    from bot.app import App

log = logging.getLogger("parley.slack")

PLATFORM = "slack"


class Recovery:
    def __init__(self, app: App, spaces: Workspaces) -> None:
        self.app = app
        self.spaces = spaces

    async def finish(self, turn: InterruptedTurn) -> None:
        """App.watch_interrupted_turns' callback: the turn ended where it was shown."""
        conversation = turn.conversation
        await self.spaces.load(conversation.tenant)
        thread = conversation.thread_id or None
        surface = SlackSurface(
            self.spaces,
            team=conversation.tenant,
            channel=conversation.channel_id,
            thread_ts=thread,
            user=turn.user_id,
            native=False,  # what was streamed natively cannot be appended to from here
        )
        if thread is not None:  # Stop goes first: once Regenerate shows, no Stop is left
            await self._remove_stop_notes(
                conversation.tenant, conversation.channel_id, thread, turn
            )
        await self.app.engine.finish_interrupted(turn, surface)
        log.info("interrupted turn finished on slack turn=%s", turn.message.id)

    async def _remove_stop_notes(
        self, team: str, channel: str, thread: str, turn: InterruptedTurn
    ) -> None:
        """Delete the messages beside a native stream that hold only its Stop (the reply's own
        messages are rewritten, not deleted, even when their last frame carried Stop)."""
        client = self.spaces.client_for(team)
        replies = await client.conversations_replies(channel=channel, ts=thread, limit=200)
        reply = {ref.id for ref in turn.refs}
        for message in replies.get("messages") or []:
            if message.get("ts") in reply or message.get("text") != NOTE_LINE:
                continue
            if buttons_in(message).get(action_id("stop")) != str(turn.message.id):
                continue
            try:
                await client.chat_delete(channel=channel, ts=message["ts"])
            except SlackApiError as exc:
                log.warning("stop note left channel=%s: %s", channel, slack_error(exc))
