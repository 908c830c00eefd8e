"""The Slack fake's app distribution: an admin approves the install on Slack's authorize page
(`approve_install`, which reads the page's URL as Slack would), and the app trades the code for
its bot token at `oauth.v2.access` (client id and secret in HTTP Basic auth or the form; a code
works once, for the redirect URI it was issued to, within 10 minutes). `uninstall` revokes a
workspace's tokens, as removing the app does.

An Enterprise Grid admin may install the app across the whole organization (`org=`): the answer
has `team: null`, the organization as `enterprise` and `is_enterprise_install: true`, and the one
token serves every workspace the organization grants it (`orgs` holds those organizations).
"""

from __future__ import annotations

import base64
import itertools
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlsplit

from tests.fakes.slack.state import APP_ID, BOT_USER
from tests.fakes.slack.validate import Invalid

CLIENT_ID = "1111111111.2222222222"
CLIENT_SECRET = "fake-client-secret-0123456789abcdef"
AUTHORIZE_PATH = "/oauth/v2/authorize"
CODE_SECONDS = 600.0
_numbers = itertools.count(1)


@dataclass(slots=True)
class _Grant:
    team: str | None
    org: str | None
    redirect_uri: str
    scopes: str
    issued: float


class OAuthMethods:
    tokens: dict[str, str]

    def init_oauth(self) -> None:
        self._grants: dict[str, _Grant] = {}
        self.installs: list[dict[str, Any]] = []
        """Every oauth.v2.access answered: the team (or organization) and the token it got."""

    def approve_install(
        self, authorize_url: str, team: str | None = None, *, org: str | None = None
    ) -> tuple[str, str]:
        """An admin of `team` (or of the whole organization `org`) clicks Allow on the page at
        `authorize_url`: (the redirect URI, the query it gets: code and state)."""
        assert (team is None) != (org is None), "a workspace's install or an organization's"
        parts = urlsplit(authorize_url)
        query = {k: v[0] for k, v in parse_qs(parts.query).items()}
        if parts.path != AUTHORIZE_PATH or query.get("client_id") != CLIENT_ID:
            raise AssertionError(f"not this app's authorize page: {authorize_url}")
        if not query.get("scope") or not query.get("state"):
            raise AssertionError(f"an authorize URL without scope or state: {authorize_url}")
        code = f"code-{team or org}-{next(_numbers)}"
        redirect = query.get("redirect_uri", "")
        self._grants[code] = _Grant(team, org, redirect, query["scope"], time.monotonic())
        return redirect, f"code={code}&state={query['state']}"

    def uninstall(self, team: str) -> None:
        """The app removed from a workspace (or an organization): its tokens stop working."""
        self.orgs.discard(team)
        for token in [t for t, owner in self.tokens.items() if owner == team]:
            del self.tokens[token]

    def oauth_access(self, args: dict[str, Any], authorization: str) -> dict[str, Any]:
        client_id, secret = args.get("client_id"), args.get("client_secret")
        if authorization.startswith("Basic "):
            decoded = base64.b64decode(authorization[len("Basic ") :]).decode()
            client_id, _, secret = decoded.partition(":")
        if client_id != CLIENT_ID:
            raise Invalid("invalid_client_id")
        if secret != CLIENT_SECRET:
            raise Invalid("bad_client_secret")
        grant = self._grants.pop(str(args.get("code") or ""), None)
        if grant is None or time.monotonic() - grant.issued > CODE_SECONDS:
            raise Invalid("invalid_code")
        if grant.redirect_uri and args.get("redirect_uri") != grant.redirect_uri:
            raise Invalid("bad_redirect_uri")
        owner = grant.org or grant.team
        assert owner is not None
        token = f"xoxb-{owner}-{next(_numbers)}"
        self.tokens[token] = owner
        self.installs.append({"team": grant.team, "enterprise": grant.org, "token": token})
        if grant.org is not None:
            self.orgs.add(grant.org)
        return {
            "access_token": token,
            "token_type": "bot",
            "scope": grant.scopes,
            "bot_user_id": BOT_USER,
            "app_id": APP_ID,
            "team": {"id": grant.team, "name": f"Workspace {grant.team}"} if grant.team else None,
            "enterprise": {"id": grant.org, "name": f"Org {grant.org}"} if grant.org else None,
            "is_enterprise_install": grant.org is not None,
            "authed_user": {"id": "U0INSTALLER"},
        }
