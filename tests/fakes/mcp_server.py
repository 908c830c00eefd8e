"""A real MCP server for the tests, written with the SDK's MCPServer (FastMCP's successor).

    python -m tests.fakes.mcp_server                 # over stdio
    python -m tests.fakes.mcp_server http PORT       # streamable HTTP on 127.0.0.1:PORT/mcp

Its tools: `search_issues` (a fixed tracker of four issues), `slow` (sleeps), `fails` (raises),
`die` (the process exits mid-call), `close_issue` (marked destructive), `count_calls` (how many
calls this process has served), and over HTTP, `whoami` (the Authorization header it got).
"""

from __future__ import annotations

import asyncio
import os
import sys

from mcp.server.mcpserver import Context, MCPServer
from mcp.types import ToolAnnotations

ISSUES = [
    (101, "Login fails with SSO after the 2.3 update"),
    (102, "Slow search on large workspaces"),
    (103, "Login button misaligned on mobile"),
    (104, "Export to CSV drops the last row"),
]

server = MCPServer("issues", instructions="A small issue tracker.")
_calls = 0


def _count() -> None:
    global _calls
    _calls += 1


@server.tool(description="Search the open issues by words; returns matching issues, one a line.")
def search_issues(query: str, limit: int = 10) -> str:
    _count()
    words = query.lower().split()
    found = [f"#{n} {title}" for n, title in ISSUES if all(w in title.lower() for w in words)]
    return "\n".join(found[:limit]) or "no open issues match"


@server.tool(description="Wait, then answer.")
async def slow(seconds: float) -> str:
    _count()
    await asyncio.sleep(seconds)
    return f"waited {seconds} s"


@server.tool(description="Always fails.")
def fails() -> str:
    _count()
    raise ValueError("the tracker is down")


@server.tool(description="Ends the server process mid-call.")
def die() -> str:
    os._exit(3)


@server.tool(
    description="Close an issue.",
    annotations=ToolAnnotations(destructiveHint=True, readOnlyHint=False),
)
def close_issue(number: int) -> str:
    _count()
    return f"closed #{number}"


@server.tool(description="How many calls this server process has served.")
def count_calls() -> str:
    return str(_calls)


@server.tool(description="The Authorization header of this request (HTTP only).")
def whoami(ctx: Context) -> str:
    return str((ctx.headers or {}).get("authorization", "none"))


if __name__ == "__main__":
    if sys.argv[1:2] == ["http"]:
        server.run("streamable-http", host="127.0.0.1", port=int(sys.argv[2]))
    else:
        server.run()
