"""MCP servers: named in the settings, connected at start, reconnected on failure, their tools
offered to the model (through the official `mcp` SDK's Client, stdio or streamable HTTP).

Each server has one task that owns its connection (the SDK's client is an anyio context that
must be left in the task that entered it): it connects within `connect_timeout`, lists the
tools, then holds the connection until it breaks or Parley stops, and connects again after a
backoff (1 s doubling to a minute). A call that finds the connection broken is answered to the
model as an error; the next turn finds the server back.

A stdio server runs only a command from the operator's allow-list (`MCP_COMMANDS`), never with
inline code (`-c`, `-e`, `--eval`), and gets a minimal environment (the SDK's default: PATH,
HOME, … — never Parley's keys) plus what its `env` names. A tool that acts on the world (its
`destructiveHint`, or the server's `approve` list) runs only once its asker approves the call.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import logging
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, model_validator

from bot.llm.types import ToolSpec
from bot.tools import Action, ToolResult, allowed, wire_name

if TYPE_CHECKING:
    from mcp import Client

log = logging.getLogger("parley.tools.mcp")

INLINE_CODE_FLAGS = frozenset({"-c", "-e", "--eval", "--command"})
"""Arguments that would make an allowed interpreter run code written into the settings."""
RESULT_MAX_CHARS = 16_000
"""The most of one tool result the model is given; the rest is cut with a note it can read."""
BACKOFF_FIRST, BACKOFF_MAX = 1.0, 60.0
PING_SECONDS = 30.0
"""How often a connection is checked (its tools listed again)."""
TOOLS_PER_SERVER = 64
"""The most tools one server may offer a model (OpenAI takes 128 in all)."""


class McpOAuth(BaseModel):
    """OAuth 2.1 client credentials for a remote server (the SDK's ClientCredentialsOAuthProvider:
    the server's protected-resource metadata names the authorization server; `issuer` must
    match it)."""

    model_config = ConfigDict(extra="forbid")

    client_id: str
    client_secret: SecretStr
    issuer: str
    scope: str | None = None
    auth_method: Literal["client_secret_basic", "client_secret_post"] = "client_secret_basic"


class McpServerConfig(BaseModel):
    """One `[[mcp_servers]]` table: stdio (`command`, `args`, `env`) or HTTP (`url`, `headers`)."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,31}$")
    command: str | None = None
    args: list[str] = Field(default_factory=list)
    env: dict[str, SecretStr] = Field(default_factory=dict)
    cwd: str | None = None
    url: str | None = None
    headers: dict[str, SecretStr] = Field(default_factory=dict)
    oauth: McpOAuth | None = None
    tools: list[str] | None = None
    """Only these of the server's tools are offered (all when unset)."""
    approve: list[str] = Field(default_factory=list)
    """Tools that act on the world whatever their annotations say."""
    call_timeout: float = Field(120.0, gt=0)
    connect_timeout: float = Field(60.0, gt=0)

    @model_validator(mode="after")
    def _one_transport(self) -> McpServerConfig:
        if (self.command is None) == (self.url is None):
            raise ValueError(f"mcp server {self.name!r}: give either command or url")
        if self.url is not None and not self.url.startswith(("http://", "https://")):
            raise ValueError(f"mcp server {self.name!r}: url must be http:// or https://")
        if self.oauth is not None and self.url is None:
            raise ValueError(f"mcp server {self.name!r}: oauth needs a url")
        return self

    @property
    def transport(self) -> Literal["stdio", "http"]:
        return "stdio" if self.command is not None else "http"

    def secrets(self) -> list[str]:
        """Every env and header value, and a header's credential without its scheme
        ("Bearer …"), for log redaction."""
        values = [v.get_secret_value() for v in (*self.env.values(), *self.headers.values())]
        if self.oauth is not None:
            values.append(self.oauth.client_secret.get_secret_value())
        return values + [v.rsplit(" ", 1)[1] for v in values if " " in v.strip()]


def refusal(config: McpServerConfig, allowed_commands: list[str]) -> str | None:
    """Why a stdio server may not start (its command is not allowed, or it carries code)."""
    if config.command is None:
        return None
    names = {config.command, os.path.basename(config.command)}
    if not names & set(allowed_commands):
        return f"command {config.command!r} is not in MCP_COMMANDS"
    if flags := INLINE_CODE_FLAGS & set(config.args):
        return f"inline code flags are not allowed: {' '.join(sorted(flags))}"
    return None


@dataclass(frozen=True, slots=True)
class McpTool:
    server: str
    name: str
    description: str
    schema: Mapping[str, object]
    acts: bool
    """It may change the world (destructiveHint, or the server's `approve` list)."""

    @property
    def label(self) -> str:
        return f"{self.server}.{self.name}"

    @property
    def spec(self) -> ToolSpec:
        return ToolSpec(wire_name(self.server, self.name), self.description, self.schema)


@dataclass(slots=True)
class ServerState:
    config: McpServerConfig
    status: Literal["connecting", "connected", "failed", "refused", "stopped"] = "connecting"
    reason: str = ""
    tools: tuple[McpTool, ...] = ()
    client: Client | None = None
    ready: asyncio.Event = field(default_factory=asyncio.Event)
    broken: asyncio.Event = field(default_factory=asyncio.Event)

    def lost(self) -> None:
        """The connection broke: offer none of its tools until it is back."""
        self.status, self.reason, self.client = "connecting", "the connection broke", None
        self.broken.set()


class McpServers:
    """Every configured server's connection, and its tools as turn actions."""

    def __init__(
        self,
        configs: list[McpServerConfig],
        *,
        allowed_commands: list[str],
        backoff: float = BACKOFF_FIRST,
        ping_every: float = PING_SECONDS,
    ) -> None:
        self.servers = {c.name: ServerState(c) for c in configs}
        self._allowed = allowed_commands
        self._backoff = backoff
        self._ping_every = ping_every
        self._tasks: list[asyncio.Task[None]] = []
        self._closing = asyncio.Event()

    async def start(self, wait: float | None = None) -> None:
        """Connect every server (at once), waiting for each up to its connect timeout, or at
        most `wait` seconds (start-up goes on; a slow server's tools are offered once it is
        connected); those that fail keep trying in the background."""
        for state in self.servers.values():
            reason = refusal(state.config, self._allowed)
            if reason is not None:
                state.status, state.reason = "refused", reason
                log.warning("mcp server %s not started: %s", state.config.name, reason)
                state.ready.set()
                continue
            self._tasks.append(
                asyncio.create_task(self._hold(state), name=f"mcp-{state.config.name}")
            )
        waits = [
            asyncio.wait_for(s.ready.wait(), min(s.config.connect_timeout + 1, wait or math.inf))
            for s in self.servers.values()
        ]
        await asyncio.gather(*waits, return_exceptions=True)

    async def aclose(self) -> None:
        self._closing.set()
        for state in self.servers.values():
            state.broken.set()
        if self._tasks:
            await asyncio.wait(self._tasks, timeout=10)
        for task in self._tasks:
            task.cancel()

    def offline(self) -> list[str]:
        """Servers configured but not connected now (their tools cannot be checked)."""
        return [name for name, s in self.servers.items() if s.status != "connected"]

    def tools(self) -> list[McpTool]:
        return [t for s in self.servers.values() if s.status == "connected" for t in s.tools]

    def actions(self, allow: tuple[str, ...] | None, *, acting: bool = True) -> list[Action]:
        """The tools a turn may offer: connected, in `allow` (`server.tool`, `server.*` or
        `server`; None: every tool), and, unless `acting`, not acting on the world."""
        return [
            Action(tool.spec, tool.label, functools.partial(self.call, tool), acts=tool.acts)
            for tool in self.tools()
            if (acting or not tool.acts)
            and (allow is None or allowed(allow, tool.server, tool.name))
        ]

    async def call(self, tool: McpTool, arguments: Mapping[str, object]) -> ToolResult:
        state = self.servers[tool.server]
        client, timeout = state.client, state.config.call_timeout
        if state.status != "connected" or client is None:
            return ToolResult.failed(f"the {tool.server} server is not connected")
        from mcp.shared.exceptions import MCPError
        from mcp_types.jsonrpc import CONNECTION_CLOSED, REQUEST_TIMEOUT

        try:
            result = await asyncio.wait_for(
                client.call_tool(tool.name, dict(arguments), read_timeout_seconds=timeout),
                timeout + 1,
            )
        except TimeoutError:
            return ToolResult.failed(f"timed out after {timeout:g} s")
        except MCPError as exc:
            if exc.error.code == REQUEST_TIMEOUT:
                return ToolResult.failed(f"timed out after {timeout:g} s")
            if exc.error.code != CONNECTION_CLOSED:
                return ToolResult.failed(f"the server refused the call: {_short(str(exc))}")
            log.warning("mcp server %s closed the connection mid-call", tool.server)
            state.lost()
            return ToolResult.failed("the server stopped responding")
        except Exception as exc:  # the transport broke under the SDK
            log.warning("mcp server %s failed mid-call: %r", tool.server, exc)
            state.lost()
            return ToolResult.failed("the server stopped responding")
        return ToolResult(_result_text(result), is_error=bool(result.is_error))

    # -- one server's connection -------------------------------------------------------------

    async def _watch(self, state: ServerState, client: Client) -> None:
        """Hold the connection until it breaks, listing the tools again every `ping_every`
        seconds: that finds a server that died while idle (else only its next call would) and
        picks up tools it added or dropped. (MCP's own ping is gone from the 2026 protocol.)"""
        while not state.broken.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(state.broken.wait(), self._ping_every)
                return
            try:
                listing = client.list_tools(cache_mode="refresh")
                listed = await asyncio.wait_for(listing, state.config.call_timeout)
            except Exception as exc:
                log.warning("mcp server %s stopped answering: %s", state.config.name, _why(exc))
                state.lost()
                return
            state.tools = _tools(state.config, listed.tools)

    async def _hold(self, state: ServerState) -> None:
        backoff = self._backoff
        name, limit = state.config.name, state.config.connect_timeout
        while not self._closing.is_set():
            state.broken.clear()
            try:
                async with contextlib.AsyncExitStack() as stack:
                    async with asyncio.timeout(limit):
                        client = await stack.enter_async_context(_open(state.config))
                        listed = await client.list_tools()
                    state.tools = _tools(state.config, listed.tools)
                    state.client, state.status, state.reason = client, "connected", ""
                    state.ready.set()
                    backoff = self._backoff
                    log.info("mcp server %s connected: %d tools", name, len(state.tools))
                    try:
                        await self._watch(state, client)
                    finally:
                        state.client = None
                if not self._closing.is_set():
                    state.status = "connecting"
            except Exception as exc:
                state.status, state.reason = "failed", _short(_why(exc))
            state.ready.set()
            if self._closing.is_set():
                break
            log.warning("mcp server %s: %s; retrying in %.0f s", name, state.reason, backoff)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._closing.wait(), backoff)
            backoff = min(backoff * 2, BACKOFF_MAX)
        state.status = "stopped"


def _why(exc: BaseException) -> str:
    """The first real cause inside the SDK's exception groups, for the log and `bot tools`."""
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    if isinstance(exc, TimeoutError):
        return "no answer within the connect timeout"
    return f"{type(exc).__name__}: {exc}"


def _open(config: McpServerConfig) -> Client:
    """The SDK's client for one server (imported here: Parley without MCP never loads it)."""
    from mcp import Client
    from mcp.client.stdio import StdioServerParameters

    if config.command is not None:
        env = {k: v.get_secret_value() for k, v in config.env.items()}
        params = StdioServerParameters(
            command=config.command, args=config.args, env=env, cwd=config.cwd
        )
        return Client(params, read_timeout_seconds=config.call_timeout)
    import httpx2
    from mcp.client.streamable_http import streamable_http_client

    assert config.url is not None
    headers = {k: v.get_secret_value() for k, v in config.headers.items()}
    http = httpx2.AsyncClient(
        headers=headers,
        timeout=httpx2.Timeout(config.connect_timeout, read=config.call_timeout),
        auth=_oauth(config.url, config.oauth) if config.oauth is not None else None,
    )
    return Client(streamable_http_client(config.url, http_client=http))


def _oauth(url: str, oauth: McpOAuth) -> Any:
    """The SDK's client-credentials flow; tokens kept in memory (fetched again after a restart)."""
    from mcp.client.auth.extensions.client_credentials import ClientCredentialsOAuthProvider

    return ClientCredentialsOAuthProvider(
        server_url=url,
        storage=_Tokens(),
        client_id=oauth.client_id,
        client_secret=oauth.client_secret.get_secret_value(),
        token_endpoint_auth_method=oauth.auth_method,
        scope=oauth.scope,
        issuer=oauth.issuer,
    )


class _Tokens:
    """The SDK's TokenStorage, in memory."""

    def __init__(self) -> None:
        self.tokens: Any = None
        self.client: Any = None

    async def get_tokens(self) -> Any:
        return self.tokens

    async def set_tokens(self, tokens: Any) -> None:
        self.tokens = tokens

    async def get_client_info(self) -> Any:
        return self.client

    async def set_client_info(self, client_info: Any) -> None:
        self.client = client_info


def _tools(config: McpServerConfig, listed: list[Any]) -> tuple[McpTool, ...]:
    tools = []
    for tool in listed:
        if config.tools is not None and tool.name not in config.tools:
            continue
        hints = tool.annotations
        destructive = bool(
            hints is not None and hints.destructive_hint and not hints.read_only_hint
        )
        tools.append(
            McpTool(
                config.name,
                tool.name,
                (tool.description or tool.title or tool.name)[:1024],
                _object_schema(tool.input_schema),
                acts=destructive or tool.name in config.approve,
            )
        )
    if len(tools) > TOOLS_PER_SERVER:
        log.warning("mcp server %s offers %d tools: only the first %d are offered",
                    config.name, len(tools), TOOLS_PER_SERVER)  # fmt: skip
    return tuple(tools[:TOOLS_PER_SERVER])


def _object_schema(schema: object) -> dict[str, Any]:
    """A tool's input schema as the providers take it: a JSON object schema ({"type": "object"}
    when a server gives none or another type; its `properties` an object)."""
    if not isinstance(schema, dict):
        return {"type": "object"}
    fixed = {k: v for k, v in schema.items() if k != "$schema"}
    fixed["type"] = "object"
    if not isinstance(fixed.get("properties", {}), dict):
        fixed.pop("properties")
    return fixed


def _result_text(result: Any) -> str:
    """What the model reads of a result: its text parts (structured content when it has no
    text), other media named, cut to RESULT_MAX_CHARS with a note."""
    parts: list[str] = []
    for block in result.content or []:
        kind = getattr(block, "type", "")
        if kind == "text":
            parts.append(block.text)
        elif kind == "resource" and hasattr(block.resource, "text"):
            parts.append(block.resource.text)
        else:
            parts.append(f"[{kind or 'content'} omitted]")
    if not parts and result.structured_content is not None:
        parts.append(json.dumps(result.structured_content, ensure_ascii=False))
    text = "\n".join(parts) or "(no output)"
    if len(text) > RESULT_MAX_CHARS:
        more = len(text) - RESULT_MAX_CHARS
        text = f"{text[:RESULT_MAX_CHARS]}\n[cut: {more:,} more characters]"
    return text


def _short(text: str) -> str:
    return text if len(text) <= 200 else text[:199] + "…"
