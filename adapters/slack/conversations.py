"""Conversations on Slack: /history with pages, /archive, /export and /new, and thread keywords.

Slash commands carry no thread_ts, so a command names its conversation one of three ways:
- in a bot thread, mention Parley with the word: `@Parley archive`, `@Parley export`, `@Parley new`
  (and `@Parley persona <name>`); these arrive as events and are claimed once through the store;
- `/archive <id>`, `/export <id>`, `/new <id>` with the id `/history` shows, from anywhere in the
  workspace;
- in a DM with Parley, `/archive`, `/export` and `/new` alone mean the DM's conversation.
The rules and the words are the core's (bot/commands/conversations.py); this module parses.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from adapters.slack.numbers import whole_number
from adapters.slack.replies import Replies, scope_of
from bot.commands import ConversationCommands
from bot.commands.conversations import MAX_PAGE

if TYPE_CHECKING:
    from slack_bolt.context.respond.async_respond import AsyncRespond

    from bot.app import App
    from bot.domain import ConversationKey

HISTORY_ACTION = re.compile(r"^parley_history_[0-9]{1,6}$")
"""The Previous / Next buttons under /history; their value is the page they show."""
KEYWORDS = ("archive", "export", "new")
_ID = re.compile(r"^#?([0-9]{1,18})$")  # ASCII: `\d` also takes other scripts' digits
HISTORY_USAGE = f"Usage: `/history [page]`, a page number from 1 to {MAX_PAGE:,}."
STALE_BUTTON = "That button no longer works."


def usage(verb: str) -> str:
    return (
        f"Usage: `/{verb} <id>` with an id from `/history`, or `@Parley {verb}` in the "
        f"conversation's thread (in a DM with me, `/{verb}` alone)."
    )


class SlackConversations:
    def __init__(self, app: App, replies: Replies) -> None:
        self.commands = ConversationCommands(app.conversations)
        self.replies = replies
        commands = self.commands
        self._handlers = {
            "archive": commands.archive,
            "export": commands.export,
            "new": commands.new,
        }

    async def history_command(
        self, team: str, command: dict[str, Any], respond: AsyncRespond
    ) -> None:
        arg = str(command.get("text") or "").strip()
        page = whole_number(arg, 1, MAX_PAGE) if arg else 1
        if page is None:
            await respond(text=HISTORY_USAGE, response_type="ephemeral")
            return
        await self._page(team, command, page, respond, replace=False)

    async def history_click(
        self, team: str, body: dict[str, Any], action: dict[str, Any], respond: AsyncRespond
    ) -> None:
        page = whole_number(str(action.get("value") or ""), 1, MAX_PAGE)
        if page is None:
            await respond(text=STALE_BUTTON, response_type="ephemeral")
            return
        where = {
            "user_id": body["user"]["id"],
            "channel_id": (body.get("channel") or {}).get("id", ""),
            "team_domain": (body.get("team") or {}).get("domain", ""),
        }
        await self._page(team, where, page, respond, replace=True)

    async def _page(
        self, team: str, where: dict[str, Any], page: int, respond: AsyncRespond, *, replace: bool
    ) -> None:
        place = scope_of(team, where.get("channel_id", ""))
        caller = await self.replies.caller(place, where["user_id"])
        await self.replies.command(
            respond,
            lambda: self.commands.history(caller, place, page),
            f"/history team={team} user={caller.user_id}",
            domain=str(where.get("team_domain") or ""),
            replace=replace,
        )

    async def slash(
        self, verb: str, team: str, command: dict[str, Any], respond: AsyncRespond
    ) -> None:
        """`/<verb> <id>` anywhere, or `/<verb>` alone in a DM with Parley."""
        channel = command["channel_id"]
        arg = str(command.get("text") or "").strip()
        match = _ID.match(arg)
        if not match and (arg or not channel.startswith("D")):
            await respond(text=usage(verb), response_type="ephemeral")
            return
        place = scope_of(team, channel)
        caller = await self.replies.caller(place, command["user_id"])
        handler = self._handlers[verb]
        conversation_id = int(match.group(1)) if match else None
        await self.replies.command(
            respond,
            lambda: handler(caller, place, conversation_id),
            f"/{verb} team={team} user={caller.user_id}",
        )

    async def keyword(self, key: ConversationKey, user: str, verb: str) -> None:
        """`@Parley archive|export|new` in a thread: act on that thread's conversation."""
        caller = await self.replies.caller(key, user)
        handler = self._handlers[verb]
        await self.replies.in_thread(
            key, user, lambda: handler(caller, key), f"thread {verb} conversation={key}"
        )
