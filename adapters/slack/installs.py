"""Slack OAuth installs: one app in many workspaces, each with its own bot token.

With SLACK_CLIENT_ID and SLACK_CLIENT_SECRET, bolt's OAuth flow serves `GET /slack/install`
(a redirect to Slack's authorize page, with a state kept in the database and a cookie) and
`GET /slack/oauth_redirect` (the state checked, the code traded at `oauth.v2.access`, the
installation saved). slack_sdk's AsyncSQLAlchemyInstallationStore and AsyncSQLAlchemyOAuthStateStore
keep them on DATABASE_URL (migration 0014). bolt authorizes every request from the installation
store; `learn_tokens` hands each request's token to the Workspaces, which the surfaces use, and
work no request started (recovery, notices) looks its workspace up first. `app_uninstalled`
and `tokens_revoked` delete the workspace's installation and forget its token.

Enterprise Grid: an organization's admin may install the app org-wide. Slack then keeps one
installation, the organization's (no team), whose token serves each workspace the organization
grants it. Requests name both the organization and the workspace, and bolt finds the
organization's installation for them; work no request started knows only the workspace, so the
pairs are kept in the store (WorkspaceOrgs), learnt from `team_access_granted` and from each
request of a Grid workspace, and dropped on `team_access_revoked` and when the organization
uninstalls. (A Grid workspace's own installation is filed under its organization as well, so
the pair finds that one too.)
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
from slack_sdk.oauth.installation_store.async_installation_store import AsyncInstallationStore
from slack_sdk.oauth.installation_store.sqlalchemy import AsyncSQLAlchemyInstallationStore
from slack_sdk.oauth.state_store.sqlalchemy import AsyncSQLAlchemyOAuthStateStore

from adapters.slack.inbound import team_of
from adapters.slack.sealed import SealedInstallationStore
from adapters.slack.surface import Installed, Workspaces
from bot.config import Settings
from bot.ops.web import WebServer
from bot.store.engine import create_engine
from bot.store.orgs_repo import WorkspaceOrgs

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
        installation_store=installation_store(settings, engine),
        installation_store_bot_only=True,
        state_store=AsyncSQLAlchemyOAuthStateStore(STATE_SECONDS, engine=engine),
    )


def installation_store(settings: Settings, engine: Any) -> AsyncSQLAlchemyInstallationStore:
    """slack_sdk's store on DATABASE_URL; with SLACK_TOKEN_KEY, one that seals the tokens."""
    client_id = settings.slack_client_id or ""
    if settings.slack_token_key is None:
        log.warning("SLACK_TOKEN_KEY is not set: Slack install tokens are stored in plain text")
        return AsyncSQLAlchemyInstallationStore(client_id, engine=engine)
    key = settings.slack_token_key.get_secret_value()
    return SealedInstallationStore(client_id, engine=engine, key=key)


def serve_installs(
    bolt: AsyncApp, spaces: Workspaces, web_server: WebServer, orgs: WorkspaceOrgs
) -> None:
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

    async def uninstalled(context: AsyncBoltContext, body: dict[str, Any]) -> None:
        event = body.get("event") or {}
        if event.get("type") == "tokens_revoked" and not (event.get("tokens") or {}).get("bot"):
            return  # only users' tokens: the bot's still works
        org, team = context.enterprise_id, team_of(context, body)
        if context.is_enterprise_install and org:  # the organization's one installation
            await store.async_delete_all(enterprise_id=org, team_id=None)
            teams = await orgs.forget(org)
            for each in {*teams, team} - {org}:
                spaces.forget(each)
            log.info("slack app removed from org=%s teams=%s", org, ",".join(teams) or "none")
            return
        await store.async_delete_all(enterprise_id=org, team_id=team)
        spaces.forget(team)
        log.info("slack app removed from team=%s (%s)", team, event.get("type"))

    async def access(body: dict[str, Any], event: dict[str, Any]) -> None:
        org, teams = body.get("enterprise_id"), [str(t) for t in event.get("team_ids") or ()]
        if not org or not teams:
            return
        if event["type"] == "team_access_granted":
            await orgs.remember(org, teams)
        else:
            for team in await orgs.forget(org, teams):
                spaces.forget(team)
        log.info("slack org=%s %s teams=%s", org, event["type"], ",".join(teams))

    web_server.add_route("GET", INSTALL_PATH, install)
    web_server.add_route("GET", REDIRECT_PATH, redirect)
    spaces.installed = installed_token(store, orgs)
    bolt.event("app_uninstalled")(uninstalled)
    bolt.event("tokens_revoked")(uninstalled)
    bolt.event("team_access_granted")(access)
    bolt.event("team_access_revoked")(access)
    bolt.use(learn_tokens(spaces, orgs))


def installed_token(store: AsyncInstallationStore, orgs: WorkspaceOrgs) -> Installed:
    """A workspace's bot token from the store: its own installation, else its organization's."""

    async def installed(team: str) -> str | None:
        org = await orgs.org_of(team)
        bot = await store.async_find_bot(enterprise_id=org, team_id=team)
        if bot is None and org is not None:
            bot = await store.async_find_bot(
                enterprise_id=org, team_id=None, is_enterprise_install=True
            )
        return bot.bot_token if bot is not None else None

    return installed


def learn_tokens(
    spaces: Workspaces, orgs: WorkspaceOrgs
) -> Callable[..., Awaitable[BoltResponse | None]]:
    """A bolt middleware: the token bolt authorized this request with, for its workspace; and,
    once per process, the organization a workspace of an Enterprise Grid belongs to (its own
    installation is filed under the organization too, and an org-wide one serves it)."""
    known: set[tuple[str, str]] = set()

    async def learn(
        context: AsyncBoltContext, body: dict[str, Any], next_: Callable[[], Awaitable[None]]
    ) -> BoltResponse | None:
        team = team_of(context, body)
        spaces.learn(team, context.bot_token)
        org = context.enterprise_id
        pair = (org or "", team)
        if org and team not in ("", org) and pair not in known:
            await orgs.remember(org, [team])
            known.add(pair)
        await next_()
        return None

    return learn


def _bolt(request: web.Request) -> AsyncBoltRequest:
    return AsyncBoltRequest(body="", query=request.query_string, headers=dict(request.headers))
