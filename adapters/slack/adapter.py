"""The Slack adapter: slack-bolt's AsyncApp over HTTP (POST /slack/events) or Socket Mode."""

from __future__ import annotations

import asyncio
import logging

from aiohttp import web
from slack_bolt.adapter.aiohttp import to_aiohttp_response
from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler
from slack_bolt.async_app import AsyncApp
from slack_sdk.signature import SignatureVerifier
from slack_sdk.web.async_client import AsyncWebClient

from adapters.slack.admins import Admins
from adapters.slack.assistant import Assistant
from adapters.slack.commands import SlackCommands
from adapters.slack.images import ImageTurns
from adapters.slack.inbound import (
    KEEP,
    PLATFORM,
    PRUNE_EVERY,
    MalformedRequest,
    bolt_request,
    is_signed,
    is_ssl_check,
    once_per_request,
)
from adapters.slack.listeners import register
from adapters.slack.recovery import Recovery
from adapters.slack.replies import Replies
from adapters.slack.surface import Workspaces
from adapters.slack.turns import Turns
from bot.app import App
from bot.config import ConfigurationError
from bot.ops.background import Background, keep_forgetting_claims
from bot.pacing import TeamBudget
from bot.shared_rate import SharedRate, budget_name
from bot.store.orgs_repo import WorkspaceOrgs

log = logging.getLogger("parley.slack")

EVENTS_PATH = "/slack/events"


class SlackAdapter:
    name = "slack"

    def __init__(self, app: App) -> None:
        settings = app.settings
        secret = settings.slack_signing_secret
        app_token = settings.slack_app_token
        installs = bool(settings.slack_client_id and settings.slack_client_secret)
        if installs and secret is None:
            raise ConfigurationError("SLACK_SIGNING_SECRET: required for installs (over HTTP)")
        if not installs and settings.slack_bot_token is None:
            raise ConfigurationError(
                "SLACK_BOT_TOKEN: required for Slack (or SLACK_CLIENT_ID and SLACK_CLIENT_SECRET)"
            )
        if secret is None and app_token is None:
            raise ConfigurationError("SLACK_SIGNING_SECRET or SLACK_APP_TOKEN: one is required")
        self.app = app
        token = settings.slack_bot_token if not installs else None  # installs: one per team
        self.client = AsyncWebClient(
            token=token.get_secret_value() if token else None, base_url=settings.slack_api_url
        )
        rate, window = settings.slack_update_rate_per_min, settings.slack_rate_window_seconds
        self.spaces = Workspaces(
            self.client,
            # Within Slack's per-workspace tiers, however Slack counts them, a quarter of
            # each as a burst for a quiet workspace (bot.pacing.TeamBudget.within).
            updates=TeamBudget.within(round(rate * window / 60), window),
            appends=TeamBudget.within(round(rate * 2 * window / 60), window),  # Tier 4
            native_enabled=settings.slack_native_streaming,
        )
        oauth = None
        if installs:
            # Imported only for a public app: slack_sdk's OAuth stores and cryptography are
            # ~7 MB that a single-workspace bot never needs.
            from adapters.slack.installs import oauth_settings, serve_installs

            oauth = oauth_settings(settings)
        self.bolt = AsyncApp(
            client=self.client,
            signing_secret=secret.get_secret_value() if secret else "",
            request_verification_enabled=secret is not None,
            logger=logging.getLogger("parley.slack.bolt"),
            oauth_settings=oauth,
        )
        self.bolt.use(once_per_request(app.store))
        self._verifier = SignatureVerifier(secret.get_secret_value()) if secret else None
        self.background = Background("slack")
        if installs:
            serve_installs(self.bolt, self.spaces, app.web, WorkspaceOrgs(app.store, PLATFORM))
        admins = Admins(self.spaces, settings.slack_admin_users)
        replies = Replies(self.spaces, admins)
        turns = Turns(app, self.spaces, SlackCommands(app, replies))
        self._images = ImageTurns(app, self.spaces)
        self._recovery = Recovery(app, self.spaces)
        assistant = Assistant(app.settings, self.spaces)
        register(self.bolt, turns, self._images, assistant, self.background.spawn)
        self._app_token = app_token.get_secret_value() if app_token else None
        # The app's replicas (processes on one database) split each workspace's budgets.
        app_id = settings.slack_client_id or (token.get_secret_value() if token else "")
        self._shared = SharedRate(
            app.store, budget_name("slack", app_id), [self.spaces.updates, self.spaces.appends]
        )
        self._serving = False
        app.web.add_readiness_check(self._ready)
        if secret is not None:
            app.web.add_route("POST", EVENTS_PATH, self._events)
        if secret is not None and settings.port is None and self._app_token is None:
            raise ConfigurationError("PORT: Slack's HTTP mode needs the web server")

    async def _ready(self) -> tuple[str, bool]:
        """/readyz: events are being served (HTTP) or the Socket Mode connection is up."""
        return "slack", self._serving

    async def _events(self, request: web.Request) -> web.StreamResponse:
        """Slack's requests: the signature is checked on the raw bytes before anything is read
        from them (bolt checks it again), and a signed body Slack would never send gets a 400."""
        assert self._verifier is not None  # the route is mounted only with a signing secret
        body = await request.read()
        if is_ssl_check(body, request.content_type):  # unsigned by Slack; bolt only answers 200
            return web.Response(status=200)
        if not is_signed(self._verifier, body, request.headers):
            return web.json_response({"error": "invalid request"}, status=401)
        try:
            parsed = bolt_request(body, request.query_string, request.headers)
        except MalformedRequest as exc:
            log.warning("malformed signed request refused (%s), %d bytes", exc, len(body))
            return web.json_response({"error": "malformed request"}, status=400)
        return await to_aiohttp_response(await self.bolt.async_dispatch(parsed))

    async def run(self, stop: asyncio.Event) -> None:
        socket: AsyncSocketModeHandler | None = None
        if self._app_token is not None:
            socket = AsyncSocketModeHandler(self.bolt, self._app_token, web_client=self.client)
            await socket.connect_async()  # type: ignore[no-untyped-call]
            log.info("slack connected in Socket Mode")
        else:
            log.info("slack serving events on %s", EVENTS_PATH)
        await self._shared.refresh()
        sharing = asyncio.create_task(self._shared.run(), name="slack-rate-share")
        self._serving = True
        self.app.watch_interrupted_turns("slack", self._recovery.finish)
        self.app.watch_unknown_images("slack", self._images.notify_unknown)
        pruning = keep_forgetting_claims(self.app.store, "slack", KEEP, every=PRUNE_EVERY)
        pruner = asyncio.create_task(pruning, name="slack-prune-claims")
        try:
            await stop.wait()
        finally:
            pruner.cancel()
            self._serving = False
            if socket is not None:
                await socket.close_async()  # type: ignore[no-untyped-call]
            # Replies finish their last message, for as long as running replies are given,
            # on this process's share (left once they are done).
            await self.background.drain(self.app.settings.shutdown_grace_seconds)
            sharing.cancel()
            await asyncio.gather(pruner, sharing, return_exceptions=True)
