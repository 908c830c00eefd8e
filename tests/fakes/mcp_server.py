"""A real MCP server for the tests, written with the SDK's MCPServer (FastMCP's successor).

    python -m tests.fakes.mcp_server                 # over stdio
    python -m tests.fakes.mcp_server http PORT       # streamable HTTP on 127.0.0.1:PORT/mcp
    python -m tests.fakes.mcp_server oauth PORT ISSUER   # the same, as an OAuth resource server
                                                     # taking only TOKEN, issued by ISSUER

Its tools: `search_issues` (a fixed tracker of four issues), `slow` (sleeps), `fails` (raises),
`die` (the process exits mid-call), `close_issue` (marked destructive), `count_calls` (how many
calls this process has served), and over HTTP, `whoami` (the Authorization header it got).
"""

from __future__ import annotations

import asyncio
import os
import sys
import threading
from typing import Any

from mcp.server.auth.provider import AccessToken
from mcp.server.auth.settings import AuthSettings
from mcp.server.mcpserver import Context, MCPServer
from mcp.types import ToolAnnotations

ISSUES = [
    (101, "Login fails with SSO after the 2.3 update"),
    (102, "Slow search on large workspaces"),
    (103, "Login button misaligned on mobile"),
    (104, "Export to CSV drops the last row"),
]

TOKEN = "mcp-oauth-token-1"
_calls = 0


def _count() -> None:
    global _calls
    _calls += 1


def search_issues(query: str, limit: int = 10) -> str:
    _count()
    words = query.lower().split()
    found = [f"#{n} {title}" for n, title in ISSUES if all(w in title.lower() for w in words)]
    return "\n".join(found[:limit]) or "no open issues match"


async def slow(seconds: float) -> str:
    _count()
    await asyncio.sleep(seconds)
    return f"waited {seconds} s"


def fails() -> str:
    _count()
    raise ValueError("the tracker is down")


def die() -> str:
    os._exit(3)


def die_soon() -> str:
    """Answer, then end the process a moment later (a server that dies while idle)."""
    threading.Timer(0.2, os._exit, (3,)).start()
    return "bye"


def close_issue(number: int) -> str:
    _count()
    return f"closed #{number}"


def count_calls() -> str:
    return str(_calls)


def whoami(ctx: Context) -> str:
    return str((ctx.headers or {}).get("authorization", "none"))


class _Verifier:
    """The resource server's check: only TOKEN is good."""

    async def verify_token(self, token: str) -> AccessToken | None:
        if token != TOKEN:
            return None
        return AccessToken(token=token, client_id="parley", scopes=["issues"])


def make_server(**options: Any) -> MCPServer:
    server = MCPServer("issues", instructions="A small issue tracker.", **options)
    tools = [
        (search_issues, "Search the open issues by words; returns matching issues, one a line."),
        (slow, "Wait, then answer."),
        (fails, "Always fails."),
        (die, "Ends the server process mid-call."),
        (die_soon, "Ends the server process just after answering."),
        (count_calls, "How many calls this server process has served."),
        (whoami, "The Authorization header of this request (HTTP only)."),
    ]
    for function, description in tools:
        server.tool(description=description)(function)
    destructive = ToolAnnotations(destructiveHint=True, readOnlyHint=False)
    server.tool(description="Close an issue.", annotations=destructive)(close_issue)
    return server


if __name__ == "__main__":
    mode = sys.argv[1:2]
    if mode == ["oauth"]:
        port, issuer = int(sys.argv[2]), sys.argv[3]
        auth = AuthSettings(
            issuer_url=issuer,
            resource_server_url=f"http://127.0.0.1:{port}/mcp",
            required_scopes=["issues"],
            validate_token_resource=False,
        )
        server = make_server(token_verifier=_Verifier(), auth=auth)
        server.run("streamable-http", host="127.0.0.1", port=port)
    elif mode == ["http"]:
        make_server().run("streamable-http", host="127.0.0.1", port=int(sys.argv[2]))
    else:
        make_server().run()
