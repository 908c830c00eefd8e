"""`/usage [me|workspace]`: the core's UsageCommands, as an ephemeral reply."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from adapters.slack.replies import Replies, scope_of
from bot.commands import Reply, UsageCommands

if TYPE_CHECKING:
    from slack_bolt.context.respond.async_respond import AsyncRespond

    from bot.app import App

USAGE = "Usage: `/usage` (yours) or `/usage workspace` (admins)"
MINE = ("", "me", "mine")
EVERYONE = ("workspace", "all", "team")


class SlackUsage:
    def __init__(self, app: App, replies: Replies) -> None:
        self.commands = UsageCommands(app.usage)
        self.replies = replies

    async def command(self, team: str, command: dict[str, Any], respond: AsyncRespond) -> None:
        user, which = command["user_id"], str(command.get("text") or "").strip().lower()
        place = scope_of(team, command["channel_id"])

        async def work() -> Reply:
            if which not in MINE + EVERYONE:
                return Reply.say(USAGE)
            caller = await self.replies.caller(place, user)
            return await self.commands.usage(caller, place, tenant=which in EVERYONE)

        await self.replies.command(respond, work, f"/usage team={team} user={user}")
