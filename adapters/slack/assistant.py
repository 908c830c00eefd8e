"""Slack's AI app surface: suggested prompts when an assistant thread starts, and the feedback
buttons under a finished answer (its title, status and buttons are SlackSurface's)."""

from __future__ import annotations

import logging
from typing import Any

from slack_sdk.errors import SlackApiError

from adapters.slack.surface import Workspaces, slack_error
from bot.commands.reply import short
from bot.config import Settings
from bot.ops.logs import event

log = logging.getLogger("parley.slack")

PROMPTS_MAX = 4
"""Slack shows at most four suggested prompts."""


class Assistant:
    def __init__(self, settings: Settings, spaces: Workspaces) -> None:
        self.prompts = settings.slack_suggested_prompts[:PROMPTS_MAX]
        self.title = settings.slack_prompts_title
        self.spaces = spaces

    async def started(self, team: str, body: dict[str, Any]) -> None:
        """assistant_thread_started: offer the suggested prompts (best effort)."""
        thread = (body.get("event") or {}).get("assistant_thread") or {}
        channel, ts = thread.get("channel_id"), thread.get("thread_ts")
        if not channel or not ts or not self.prompts:
            return
        prompts = [{"title": short(p, 40), "message": p} for p in self.prompts]
        try:
            await self.spaces.client_for(team).assistant_threads_setSuggestedPrompts(
                channel_id=channel, thread_ts=ts, prompts=prompts, title=self.title
            )
        except SlackApiError as exc:
            log.warning("suggested prompts refused team=%s: %s", team, slack_error(exc))

    async def feedback(self, team: str, body: dict[str, Any], action: dict[str, Any]) -> None:
        """👍 or 👎 under an answer: logged with the turn it rates."""
        rating, _, turn = str(action.get("value") or "").partition(":")
        if rating not in ("good", "bad") or not turn.isdecimal():
            return
        user = (body.get("user") or {}).get("id")
        event(log, logging.INFO, "feedback", team=team, user=user, turn=int(turn), rating=rating)
