"""`/usage [me|workspace]`: tokens and spend today and this month, as an ephemeral reply."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from adapters.slack.admins import Admins
from adapters.slack.conversations import scope_of
from bot.engine.usage import format_usage
from bot.markup import SLACK
from bot.sorry import apologize

if TYPE_CHECKING:
    from slack_bolt.context.respond.async_respond import AsyncRespond

    from bot.app import App

log = logging.getLogger("parley.slack")


class UsageCommand:
    def __init__(self, app: App, admins: Admins) -> None:
        self.app = app
        self.admins = admins

    async def command(self, team: str, command: dict[str, Any], respond: AsyncRespond) -> None:
        user, channel = command["user_id"], command["channel_id"]
        which = str(command.get("text") or "").strip().lower()
        service = self.app.usage
        try:
            if service is None:
                raise RuntimeError("the usage service is not configured")
            scope = scope_of(team, channel)
            if which in ("", "me", "mine"):
                text = format_usage(await service.user_summary(scope, user), markup=SLACK)
            elif which in ("workspace", "all", "team"):
                if not await self.admins.is_admin(team, user):
                    text = "Only workspace admins can see the workspace's usage."
                else:
                    report = await service.tenant_summary(scope, is_admin=True)
                    text = format_usage(report, title="Workspace usage", markup=SLACK)
            else:
                text = "Usage: `/usage` (yours) or `/usage workspace` (admins)"
        except Exception as exc:
            text = apologize(log, exc, "/usage team=%s user=%s", team, user)
        await respond(text=text, response_type="ephemeral")
