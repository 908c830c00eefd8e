"""Who is a Parley admin in a Slack workspace: its admins and owners, plus SLACK_ADMIN_USERS.

Admins create, edit and delete personas, set a channel's default persona and model, and see the
workspace's /usage. Slack's own roles come from `users.info` (scope users:read), cached for a few
minutes; a user of another workspace is never an admin here, whatever their role there.
"""

from __future__ import annotations

import logging
import time

from slack_sdk.errors import SlackApiError, SlackClientError

from adapters.slack.surface import Workspaces, slack_error

log = logging.getLogger("parley.slack")

CACHE_SECONDS = 300.0


class Admins:
    def __init__(self, spaces: Workspaces, configured: list[str]) -> None:
        self._spaces = spaces
        self._configured = {user.strip() for user in configured if user.strip()}
        self._cache: dict[tuple[str, str], tuple[bool, float]] = {}

    async def is_admin(self, team: str, user: str) -> bool:
        if user in self._configured:
            return True
        cached = self._cache.get((team, user))
        if cached is not None and time.monotonic() - cached[1] < CACHE_SECONDS:
            return cached[0]
        try:
            response = await self._spaces.client_for(team).users_info(user=user)
        except (SlackApiError, SlackClientError, OSError, TimeoutError) as exc:
            # Not cached: a failed lookup refuses now and asks again next time.
            error = slack_error(exc) if isinstance(exc, SlackApiError) else type(exc).__name__
            log.warning("users.info failed team=%s user=%s error=%s", team, user, error)
            return False
        info = response.get("user") or {}
        admin = info.get("team_id") == team and bool(
            info.get("is_admin") or info.get("is_owner") or info.get("is_primary_owner")
        )
        self._cache[(team, user)] = (admin, time.monotonic())
        return admin
