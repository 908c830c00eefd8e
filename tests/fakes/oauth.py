"""A strict fake OAuth 2.1 authorization server on 127.0.0.1 for the client-credentials grant.

`GET /.well-known/oauth-authorization-server` (RFC 8414 metadata) and `POST /token`: the client
must authenticate with HTTP Basic (`client_secret_basic`), ask for `grant_type=client_credentials`
and name the `resource` it wants a token for (RFC 8707); it gets TOKEN, which only the test MCP
server's resource mode takes. Wrong credentials get 401 `invalid_client`. Every call is recorded.
"""

from __future__ import annotations

import base64
from typing import Any

from aiohttp import web

from tests.fakes.mcp_server import TOKEN
from tests.fakes.network import Loopback

CLIENT_ID, CLIENT_SECRET = "parley", "oauth-secret-42"


class OAuthFake(Loopback):
    def __init__(self) -> None:
        self.calls: list[dict[str, Any]] = []

    @property
    def issuer(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def __aenter__(self) -> OAuthFake:
        app = web.Application()
        app.router.add_get("/.well-known/oauth-authorization-server", self._metadata)
        app.router.add_post("/token", self._token)
        await self.serve(app)
        return self

    async def _metadata(self, request: web.Request) -> web.Response:
        self.calls.append({"path": request.path})
        return web.json_response(
            {
                "issuer": self.issuer,
                "authorization_endpoint": f"{self.issuer}/authorize",
                "token_endpoint": f"{self.issuer}/token",
                "response_types_supported": ["code"],
                "grant_types_supported": ["client_credentials"],
                "token_endpoint_auth_methods_supported": ["client_secret_basic"],
            }
        )

    async def _token(self, request: web.Request) -> web.Response:
        form = dict(await request.post())
        self.calls.append(
            {"path": request.path, "form": form, "auth": request.headers.get("Authorization")}
        )
        good = "Basic " + base64.b64encode(f"{CLIENT_ID}:{CLIENT_SECRET}".encode()).decode()
        if request.headers.get("Authorization") != good:
            return web.json_response({"error": "invalid_client"}, status=401)
        if form.get("grant_type") != "client_credentials" or not form.get("resource"):
            return web.json_response({"error": "invalid_request"}, status=400)
        return web.json_response(
            {"access_token": TOKEN, "token_type": "Bearer", "expires_in": 3600, "scope": "issues"}
        )
