"""Requests to a bot's /slack/events as Slack sends them: signed, in Slack's payload shapes."""

from __future__ import annotations

import hashlib
import hmac
import itertools
import json
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import aiohttp

from tests.fakes.slack.server import APP_ID, BOT_USER, SlackFake

_counter = itertools.count(1)


def signature(secret: str, timestamp: str, body: str) -> str:
    """Slack's v0 signature: HMAC-SHA256 of `v0:{timestamp}:{body}`, hex, prefixed `v0=`."""
    base = f"v0:{timestamp}:{body}".encode()
    return "v0=" + hmac.new(secret.encode(), base, hashlib.sha256).hexdigest()


@dataclass(slots=True)
class Sent:
    status: int
    body: str
    elapsed: float


class SlackSender:
    """What Slack's servers do towards the bot's events URL. With `org`, the requests of a
    workspace of an Enterprise Grid organization whose app is installed org-wide: they name the
    organization, say `is_enterprise_install`, and (as Slack does for org-wide installs) events
    authorize the organization with no team, and interactions have no `team`."""

    def __init__(
        self, url: str, secret: str, fake: SlackFake, team: str = "T0001", *, org: str = ""
    ) -> None:
        self.url = url
        self.secret = secret
        self.fake = fake
        self.team = team
        self.org = org
        self._session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> SlackSender:
        self._session = aiohttp.ClientSession()
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._session is not None:
            await self._session.close()

    async def post(
        self,
        body: str,
        content_type: str,
        *,
        timestamp: int | None = None,
        secret: str | None = None,
        extra_headers: dict[str, str] | None = None,
    ) -> Sent:
        assert self._session is not None, "use `async with SlackSender(...)`"
        ts = str(int(time.time()) if timestamp is None else timestamp)
        headers = {
            "Content-Type": content_type,
            "X-Slack-Request-Timestamp": ts,
            "X-Slack-Signature": signature(secret or self.secret, ts, body),
        } | (extra_headers or {})
        started = time.monotonic()
        async with self._session.post(self.url, data=body.encode(), headers=headers) as resp:
            text = await resp.text()
        return Sent(resp.status, text, time.monotonic() - started)

    # -- slash commands ----------------------------------------------------------------------------

    def command_body(
        self, command: str, text: str, *, user: str, channel: str, team: str | None = None
    ) -> str:
        team = team or self.team
        return urlencode(
            {
                "token": "legacy-verification-token",
                "team_id": team,
                "team_domain": "fake",
                "channel_id": channel,
                "channel_name": "general",
                "user_id": user,
                "user_name": user.lower(),
                "command": command,
                "text": text,
                "api_app_id": APP_ID,
                "is_enterprise_install": "true" if self.org else "false",
                **({"enterprise_id": self.org, "enterprise_name": "Org"} if self.org else {}),
                "response_url": self.fake.new_response_url(channel, user),
                "trigger_id": f"{next(_counter)}.{team}.abcdef",
            }
        )

    async def command(
        self, command: str, text: str, *, user: str, channel: str, team: str | None = None
    ) -> Sent:
        body = self.command_body(command, text, user=user, channel=channel, team=team)
        return await self.post(body, "application/x-www-form-urlencoded")

    # -- events ------------------------------------------------------------------------------------

    def event_body(self, event: dict[str, Any], *, team: str | None = None, event_id: str) -> str:
        team = team or self.team
        mine = {"team_id": team, "enterprise_id": None, "is_enterprise_install": False}
        if self.org:
            mine = {"team_id": None, "enterprise_id": self.org, "is_enterprise_install": True}
        return json.dumps(
            {
                "token": "legacy-verification-token",
                "team_id": team or None,  # none for an organization's own events
                **({"enterprise_id": self.org} if self.org else {}),
                "api_app_id": APP_ID,
                "event": event,
                "type": "event_callback",
                "event_id": event_id,
                "event_time": int(time.time()),
                "authorizations": [mine | {"user_id": BOT_USER, "is_bot": True}],
                "is_ext_shared_channel": False,
                "event_context": f"4-{event_id}",
            }
        )

    async def event(
        self,
        event: dict[str, Any],
        *,
        team: str | None = None,
        event_id: str | None = None,
        retry_num: int | None = None,
    ) -> Sent:
        event_id = event_id or f"Ev{next(_counter):08d}"
        headers = {}
        if retry_num is not None:
            headers = {"X-Slack-Retry-Num": str(retry_num), "X-Slack-Retry-Reason": "http_timeout"}
        body = self.event_body(event, team=team, event_id=event_id)
        return await self.post(body, "application/json", extra_headers=headers)

    def mention(
        self, channel: str, user: str, text: str, *, thread_ts: str | None = None
    ) -> dict[str, Any]:
        """An app_mention event for a message the fake now holds (text gets the bot's mention)."""
        full = f"<@{BOT_USER}> {text}"
        message = self.fake.user_message(channel, user, full, thread_ts=thread_ts, team=self.team)
        event = {
            "type": "app_mention",
            "user": user,
            "text": full,
            "ts": message.ts,
            "channel": channel,
            "event_ts": message.ts,
            "team": self.team,
        }
        if thread_ts:
            event["thread_ts"] = thread_ts
        return event

    def message(
        self,
        channel: str,
        user: str,
        text: str,
        *,
        thread_ts: str | None = None,
        files: Sequence[tuple[str, bytes, str]] = (),
    ) -> dict[str, Any]:
        """A `message` event (channel_type im for D… channels) for a message the fake now holds;
        with `files` (name, bytes, mimetype), a `file_share` whose files the fake serves at
        their `url_private_download` to the bot's token only (`fake.user_files`)."""
        message = self.fake.user_message(channel, user, text, thread_ts=thread_ts, team=self.team)
        event = {
            "type": "message",
            "user": user,
            "text": text,
            "ts": message.ts,
            "channel": channel,
            "event_ts": message.ts,
            "team": self.team,
            "channel_type": "im" if channel.startswith("D") else "channel",
        }
        if thread_ts:
            event["thread_ts"] = thread_ts
        if files:
            event |= {"subtype": "file_share", "files": [self.file(user, *f) for f in files]}
        return event

    def file(self, user: str, name: str, data: bytes, mimetype: str) -> dict[str, Any]:
        """A file object as Slack puts it in a message event."""
        url = self.fake.user_files.private(name, data, mimetype, token=self.fake.bot_token)
        audio = mimetype.startswith("audio/")
        return {
            "id": f"F{next(_counter):08d}", "name": name, "title": name, "mimetype": mimetype,
            "filetype": name.rsplit(".", 1)[-1], "size": len(data), "mode": "hosted",
            "user": user, "url_private": url, "url_private_download": url,
        } | ({"subtype": "slack_audio"} if audio else {})  # fmt: skip

    # -- interactions ------------------------------------------------------------------------------

    def _team_and_org(self) -> dict[str, Any]:
        if self.org:  # org-wide: no team (the clicker's is in `user.team_id`)
            org = {"id": self.org, "name": "Org"}
            return {"team": None, "enterprise": org, "is_enterprise_install": True}
        team = {"id": self.team, "domain": "fake"}
        return {"team": team, "enterprise": None, "is_enterprise_install": False}

    def action_body(
        self,
        button: dict[str, Any],
        *,
        user: str,
        channel: str,
        message_ts: str,
        thread_ts: str | None,
    ) -> str:
        message = self.fake.messages.get((channel, message_ts))
        payload = {
            "type": "block_actions",
            "user": {
                "id": user,
                "username": user.lower(),
                "name": user.lower(),
                "team_id": self.team,
            },
            "api_app_id": APP_ID,
            "token": "legacy-verification-token",
            "container": {
                "type": "message",
                "message_ts": message_ts,
                "channel_id": channel,
                "is_ephemeral": False,
                "thread_ts": thread_ts,
            },
            "trigger_id": f"{next(_counter)}.{self.team}.abcdef",
            **self._team_and_org(),
            "channel": {"id": channel, "name": "general"},
            "message": {
                "type": "message",
                "user": BOT_USER,
                "ts": message_ts,
                "thread_ts": thread_ts,
                "text": message.text if message else "",
                "blocks": message.blocks if message else [],
            },
            "state": {"values": {}},
            "response_url": self.fake.new_response_url(channel, user),
            "actions": [
                {
                    "action_id": button["action_id"],
                    "block_id": "parley_controls",
                    "text": button["text"],
                    "value": button.get("value", ""),
                    "type": "button",
                    "action_ts": f"{time.time():.6f}",
                }
            ],
        }
        return "payload=" + _quote(json.dumps(payload))

    async def click_ephemeral(
        self, button: dict[str, Any], *, user: str, channel: str, response_url: str
    ) -> Sent:
        """A click on a button of an ephemeral message (a response_url reply): no message ts."""
        payload = {
            "type": "block_actions",
            "user": {
                "id": user,
                "username": user.lower(),
                "name": user.lower(),
                "team_id": self.team,
            },
            "api_app_id": APP_ID,
            "token": "legacy-verification-token",
            "container": {
                "type": "message",
                "message_ts": f"{time.time():.6f}",
                "channel_id": channel,
                "is_ephemeral": True,
            },
            "trigger_id": f"{next(_counter)}.{self.team}.abcdef",
            **self._team_and_org(),
            "channel": {"id": channel, "name": "general"},
            "state": {"values": {}},
            "response_url": response_url,
            "actions": [
                {
                    "action_id": button["action_id"],
                    "block_id": "parley_history",
                    "text": button["text"],
                    "value": button.get("value", ""),
                    "type": "button",
                    "action_ts": f"{time.time():.6f}",
                }
            ],
        }
        body = "payload=" + _quote(json.dumps(payload))
        return await self.post(body, "application/x-www-form-urlencoded")

    async def click(
        self,
        button: dict[str, Any],
        *,
        user: str,
        channel: str,
        message_ts: str,
        thread_ts: str | None,
    ) -> Sent:
        body = self.action_body(
            button, user=user, channel=channel, message_ts=message_ts, thread_ts=thread_ts
        )
        return await self.post(body, "application/x-www-form-urlencoded")


def _quote(text: str) -> str:
    from urllib.parse import quote

    return quote(text, safe="")
