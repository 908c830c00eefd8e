"""Slack OAuth installs: one app in many workspaces, each with its own bot token.

With SLACK_CLIENT_ID and SLACK_CLIENT_SECRET, bolt's OAuth flow serves `GET /slack/install`
(a redirect to Slack's authorize page, with a state kept in the database and a cookie) and
`GET /slack/oauth_redirect` (the state checked, the code traded at `oauth.v2.access`, the
installation saved). slack_sdk's AsyncSQLAlchemyInstallationStore and AsyncSQLAlchemyOAuthStateStore
keep them on DATABASE_URL (migration 0014). bolt authorizes every request from the installation
store; `learn_tokens` hands each request's token to the Workspaces, which the surfaces use, and
work no request started (recovery, notices) looks its workspace up first. `app_uninstalled`
and `tokens_revoked` delete the workspace's installation and forget its token.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web
from slack_bolt.adapter.aiohttp import to_aiohttp_response
from slack_bolt.async_app import AsyncApp
from slack_bolt.context.async_context import AsyncBoltContext
from slack_bolt.oauth.async_oauth_settings import AsyncOAuthSettings
from slack_bolt.request.async_request import AsyncBoltRequest
from slack_bolt.response import BoltResponse
from slack_sdk.oauth.installation_store.sqlalchemy import AsyncSQLAlchemyInstallationStore
from slack_sdk.oauth.state_store.sqlalchemy import AsyncSQLAlchemyOAuthStateStore

from adapters.slack.surface import Workspaces
from bot.config import Settings
from bot.ops.web import WebServer
from bot.store.engine import create_engine

log = logging.getLogger("parley.slack")

INSTALL_PATH = "/slack/install"
REDIRECT_PATH = "/slack/oauth_redirect"
STATE_SECONDS = 600


def oauth_settings(settings: Settings) -> AsyncOAuthSettings:
    assert settings.slack_client_id and settings.slack_client_secret
    engine = create_engine(settings.database_url)
    client_id = settings.slack_client_id
    return AsyncOAuthSettings(
        client_id=client_id,
        client_secret=settings.slack_client_secret.get_secret_value(),
        scopes=settings.slack_scopes,
        redirect_uri=settings.slack_redirect_uri,
        install_path=INSTALL_PATH,
        redirect_uri_path=REDIRECT_PATH,
        install_page_rendering_enabled=False,  # straight to Slack's authorize page
        authorization_url=settings.slack_authorize_url,
        installation_store=AsyncSQLAlchemyInstallationStore(client_id, engine=engine),
        installation_store_bot_only=True,
        state_store=AsyncSQLAlchemyOAuthStateStore(STATE_SECONDS, engine=engine),
    )


def serve_installs(bolt: AsyncApp, spaces: Workspaces, web_server: WebServer) -> None:
    """Mount the install routes, look tokens up for background work, and forget uninstalls."""
    flow = bolt.oauth_flow
    assert flow is not None
    store = flow.settings.installation_store

    async def install(request: web.Request) -> web.StreamResponse:
        return await to_aiohttp_response(await flow.handle_installation(_bolt(request)))

    async def redirect(request: web.Request) -> web.StreamResponse:
        answer = await flow.handle_callback(_bolt(request))
        log.info("slack install callback answered %d", answer.status)
        return await to_aiohttp_response(answer)

    async def installed(team: str) -> str | None:
        bot = await store.async_find_bot(enterprise_id=None, team_id=team)
        return bot.bot_token if bot is not None else None

    async def uninstalled(context: AsyncBoltContext, event: dict[str, Any]) -> None:
        team = context.team_id or ""
        if event.get("type") == "tokens_revoked" and not (event.get("tokens") or {}).get("bot"):
            return  # only users' tokens: the bot's still works
        await store.async_delete_all(enterprise_id=context.enterprise_id, team_id=team)
        spaces.forget(team)
        log.info("slack app removed from team=%s (%s)", team, event.get("type"))

    web_server.add_route("GET", INSTALL_PATH, install)
    web_server.add_route("GET", REDIRECT_PATH, redirect)
    spaces.installed = installed
    bolt.event("app_uninstalled")(uninstalled)
    bolt.event("tokens_revoked")(uninstalled)
    bolt.use(learn_tokens(spaces))


def learn_tokens(
    spaces: Workspaces,
) -> Callable[..., Awaitable[BoltResponse | None]]:
    """A bolt middleware: the token bolt authorized this request with, for its workspace."""

    async def learn(
        context: AsyncBoltContext, next_: Callable[[], Awaitable[None]]
    ) -> BoltResponse | None:
        spaces.learn(context.team_id or "", context.bot_token)
        await next_()
        return None

    return learn


def _bolt(request: web.Request) -> AsyncBoltRequest:
    return AsyncBoltRequest(body="", query=request.query_string, headers=dict(request.headers))
