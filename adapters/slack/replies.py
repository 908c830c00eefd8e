"""Command replies on Slack: the core's Reply as mrkdwn and Block Kit, wherever it is asked.

A slash command answers through its response_url (`respond`); a thread keyword
(`@Parley archive`) answers with an ephemeral message in the thread. Either way an
announcement goes to the conversation's thread and a file is uploaded there: a response_url
cannot carry one. Refusals (UserError) and failures are shown through `bot.sorry.apologize`.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from slack_sdk.errors import SlackApiError, SlackClientError

from adapters.slack.admins import Admins
from adapters.slack.blocks import button
from adapters.slack.surface import SlackSurface, Workspaces, slack_error
from bot.commands.conversations import EXPORT_FAILED
from bot.commands.reply import Reply, render_line
from bot.domain import Caller, ConversationKey
from bot.markup import SLACK, Markup, slack_place
from bot.sorry import apologize

if TYPE_CHECKING:
    from slack_bolt.context.respond.async_respond import AsyncRespond

log = logging.getLogger("parley.slack")

PLATFORM = "slack"
SECTION_MAX = 3000  # a section's text
BUTTON_ACTION = "parley_{action}_{value}"


def scope_of(team: str, channel: str) -> ConversationKey:
    """Where a slash command came from (Slack sends no thread with one)."""
    return ConversationKey(PLATFORM, team, channel, "")


def blocks_of(reply: Reply, markup: Markup) -> list[dict[str, Any]]:
    """Sections of the text (each within Slack's 3,000 characters), small print, buttons."""
    blocks: list[dict[str, Any]] = []
    chunk = ""
    for line in (render_line(line, markup) for line in reply.lines):
        if chunk and len(chunk) + 1 + len(line) > SECTION_MAX:
            blocks.append(_section(chunk))
            chunk = ""
        chunk = f"{chunk}\n{line}" if chunk else line[:SECTION_MAX]
    if chunk:
        blocks.append(_section(chunk))
    if reply.note:
        note = {"type": "mrkdwn", "text": render_line(reply.note, markup)}
        blocks.append({"type": "context", "elements": [note]})
    if reply.buttons:
        buttons = [
            button(BUTTON_ACTION.format(action=b.action, value=b.value), b.label, b.value)
            for b in reply.buttons
        ]
        blocks.append({"type": "actions", "block_id": "parley_reply", "elements": buttons})
    return blocks


def _section(text: str) -> dict[str, Any]:
    return {"type": "section", "text": {"type": "mrkdwn", "text": text}}


class Replies:
    """Runs a core command for a Slack user and shows what it answers."""

    def __init__(self, spaces: Workspaces, admins: Admins) -> None:
        self.spaces = spaces
        self.admins = admins

    def _at(self, key: ConversationKey, user: str = "") -> SlackSurface:
        return SlackSurface(
            self.spaces, team=key.tenant, channel=key.channel, thread_ts=key.thread or None,
            user=user, native=False,
        )  # fmt: skip

    async def caller(self, place: ConversationKey, user: str) -> Caller:
        return Caller.at(place, user, is_admin=await self.admins.is_admin(place.tenant, user))

    async def command(
        self,
        respond: AsyncRespond,
        work: Callable[[], Awaitable[Reply]],
        what: str,
        *,
        domain: str = "",
        replace: bool = False,
    ) -> None:
        """`work()`'s reply through the response_url, ephemeral; its announcement and file in
        the conversation."""
        try:
            reply = await work()
        except Exception as exc:
            await respond(text=apologize(log, exc, what), response_type="ephemeral")
            return
        markup = SLACK.at(slack_place(domain))
        text = await self._send_on(reply, markup)
        await respond(
            text=text[:SECTION_MAX],
            blocks=blocks_of(reply, markup) if reply.file is None else None,
            response_type="ephemeral",
            replace_original=replace,
        )

    async def in_thread(
        self, key: ConversationKey, user: str, work: Callable[[], Awaitable[Reply]], what: str
    ) -> None:
        """`work()`'s reply as an ephemeral message in the thread at `key`."""
        try:
            reply = await work()
        except Exception as exc:
            text = apologize(log, exc, what)
        else:
            text = await self._send_on(reply, SLACK)
        await self._at(key, user).ephemeral(text)

    async def _send_on(self, reply: Reply, markup: Markup) -> str:
        """The reply's file or announcement into its conversation; what to tell the user."""
        if reply.file is not None:
            return await self._deliver(reply, markup)
        if reply.announce:
            await self._announce(reply, markup)
        return reply.text(markup)

    async def _announce(self, reply: Reply, markup: Markup) -> None:
        assert reply.target is not None
        await self._at(reply.target).say(render_line(reply.announce, markup))

    async def _deliver(self, reply: Reply, markup: Markup) -> str:
        """Upload the reply's file to its conversation; what to tell the user."""
        assert reply.file is not None and reply.target is not None
        where, file = reply.target, reply.file
        try:
            await self.spaces.client_for(where.tenant).files_upload_v2(
                channel=where.channel,
                thread_ts=where.thread or None,
                content=file.data,
                filename=file.name,
                title=file.name,
                initial_comment=render_line(reply.announce, markup),
            )
        except SlackApiError as exc:
            error = slack_error(exc)
            log.warning("upload failed conversation=%s error=%s", where, error)
            return f"{EXPORT_FAILED} ({error})"
        except (SlackClientError, OSError, TimeoutError) as exc:
            log.warning("upload failed conversation=%s: %r", where, exc)
            return EXPORT_FAILED
        return reply.text(markup) + " It is in the conversation's thread."
