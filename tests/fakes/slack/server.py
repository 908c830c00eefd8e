"""The Slack fake's plumbing: lifecycle, the `/api/{method}` route, tokens, rate limits, faults.

One route `/api/{method}` takes query, form and JSON arguments as slack_sdk sends them (in form
bodies `blocks` arrives as a JSON string). Errors come back the way Slack sends them: HTTP 200
with `{"ok": false, "error": ...}`, and rate limits as HTTP 429 + `Retry-After` + `ratelimited`.
The methods live in methods.py, uploads in files.py, the Socket Mode socket in socket_mode.py.
"""

from __future__ import annotations

import json
import socket
import time
from collections import deque
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from tests.fakes.files import FileHost
from tests.fakes.network import round_trip
from tests.fakes.slack.files import FileMethods
from tests.fakes.slack.methods import Handler, WebMethods
from tests.fakes.slack.oauth import OAuthMethods
from tests.fakes.slack.records import Message, ResponseUrl, SlackCall
from tests.fakes.slack.socket_mode import SocketMode
from tests.fakes.slack.state import APP_ID, BOT_ID, BOT_USER
from tests.fakes.slack.validate import Invalid, validate_blocks

__all__ = ["APP_ID", "BOT_ID", "BOT_USER", "SlackFake"]

RESPONSE_URL_USES = 5
NATIVE_REFUSALS = ("feature_not_enabled", "unknown_method", "method_deprecated")


@dataclass(slots=True)
class _Limit:
    calls: int
    per: float


@dataclass(slots=True)
class _Injected:
    error: str
    http_429: bool
    retry_after: int


class SlackFake(WebMethods, FileMethods, SocketMode, OAuthMethods):
    """A strict Slack Web API on 127.0.0.1. `tokens` maps each bot token to its team id."""

    def __init__(
        self,
        *,
        tokens: dict[str, str] | None = None,
        app_token: str = "xapp-1-test-app-token",
        update_limit: tuple[int, float] | None = (50, 60.0),
        native_streaming: bool = True,
        native_refusal: str = "feature_not_enabled",
    ) -> None:
        super().__init__()
        self.tokens = tokens or {"xoxb-test-bot-token": "T0001"}
        self.app_token = app_token
        self.native_streaming = native_streaming
        self.native_refusal = native_refusal
        self.limits: dict[str, _Limit] = {}
        if update_limit is not None:
            self.limit("chat.update", *update_limit)
        self._injected: dict[str, deque[_Injected]] = {}
        self.rtt = 0.0
        """Seconds of network round trip on every Web API call, half each way (benchmarks)."""
        self.user_files = FileHost()
        """Where the files of users' messages are served (`url_private_download`)."""
        self._history: dict[tuple[str, str], deque[float]] = {}
        self._runner: web.AppRunner | None = None
        self._handlers: dict[str, Handler] = self.method_handlers() | self.file_handlers()
        self.init_oauth()

    # -- lifecycle ----------------------------------------------------------------------------

    async def start(self) -> SlackFake:
        app = web.Application(
            client_max_size=4 * 1024 * 1024, middlewares=[round_trip(lambda: self.rtt)]
        )
        app.router.add_route("*", "/api/{method}", self._api)
        app.router.add_post("/respond/{id}", self._respond)
        app.router.add_post("/upload/{id}", self._upload)
        app.router.add_get("/link", self._link)
        await self.user_files.__aenter__()
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.1)
        await self._runner.setup()
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", 0))
        self._port = sock.getsockname()[1]
        await web.SockSite(self._runner, sock).start()
        return self

    async def close(self) -> None:
        await self.user_files.__aexit__()
        for ws in list(self._sockets):
            await ws.close()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> SlackFake:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    @property
    def api_url(self) -> str:
        """The value for SLACK_API_URL."""
        return f"{self.url}/api/"

    @property
    def bot_token(self) -> str:
        return next(iter(self.tokens))

    # -- configuration --------------------------------------------------------------------------

    def limit(self, method: str, calls: int, per: float) -> None:
        """Allow `calls` calls of `method` per team in any `per`-second window, then 429."""
        self.limits[method] = _Limit(calls, per)

    def inject(
        self,
        method: str,
        error: str = "ratelimited",
        *,
        times: int = 1,
        http_429: bool = True,
        retry_after: int = 1,
    ) -> None:
        """Answer the next `times` calls of `method` with `error` (ratelimited: as a 429)."""
        queue = self._injected.setdefault(method, deque())
        queue.extend(_Injected(error, http_429, retry_after) for _ in range(times))

    # -- what tests read ------------------------------------------------------------------------

    def calls_to(self, method: str) -> list[SlackCall]:
        return [c for c in self.calls if c.method == method]

    def web_calls(self) -> list[SlackCall]:
        return list(self.calls)

    def bot_replies(self, channel: str, thread_ts: str | None) -> list[Message]:
        if thread_ts is None:
            found = [
                m
                for m in self.messages.values()
                if m.channel == channel and m.thread_ts is None and m.is_bot
            ]
            return sorted(found, key=lambda m: m.ts)
        return [m for m in self.thread(channel, thread_ts) if m.is_bot]

    def reply_text(self, channel: str, thread_ts: str | None, *, skip: int = 0) -> str:
        """The bot's reply in a thread as one text: its messages joined (after `skip` of them)."""
        return "\n".join(m.text for m in self.bot_replies(channel, thread_ts)[skip:])

    def user_message(
        self, channel: str, user: str, text: str, *, thread_ts: str | None = None, team: str = ""
    ) -> Message:
        """A message a person wrote (for the events a test then sends about it)."""
        message = Message(channel, self._next_ts(), text, user, thread_ts, team=team)
        self.messages[(channel, message.ts)] = message
        return message

    def new_response_url(self, channel: str, user: str) -> str:
        rid = f"R{next(self._ids):05d}"
        self.response_urls[rid] = ResponseUrl(rid, channel, user)
        return f"{self.url}/respond/{rid}"

    # -- HTTP plumbing ----------------------------------------------------------------------------

    async def _api(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        args: dict[str, Any] = dict(request.query)
        raw = await request.read()
        ctype = request.headers.get("Content-Type", "")
        if raw:
            if ctype.startswith("application/json"):
                try:
                    body = json.loads(raw)
                except ValueError:
                    return _error("invalid_json")
                if not isinstance(body, dict):
                    return _error("invalid_json")
                args |= body
            elif ctype.startswith("application/x-www-form-urlencoded"):
                args |= dict(await request.post())
            else:
                return _error("invalid_form_data")
        for name in ("blocks", "chunks", "files", "loading_messages"):
            if isinstance(args.get(name), str):
                try:
                    args[name] = json.loads(args[name])
                except ValueError:
                    return _error("invalid_blocks_format" if name == "blocks" else "invalid_json")
        token = _bearer(request) or str(args.pop("token", ""))
        args.pop("token", None)
        call = SlackCall(method, args, None, time.monotonic())
        self.calls.append(call)
        try:
            if method == "oauth.v2.access":  # the app's credentials, not a token
                authorization = request.headers.get("Authorization", "")
                response = self.oauth_access(args, authorization)
            else:
                response = self._dispatch(call, token)
        except _RateLimited as exc:
            call.http_status, call.error = exc.status, "ratelimited"
            call.response = {"ok": False, "error": "ratelimited"}
            headers = {"Retry-After": str(exc.retry_after)} if exc.status == 429 else {}
            self._touch()
            return web.json_response(call.response, status=exc.status, headers=headers)
        except Invalid as exc:
            call.error = exc.error
            call.response = {"ok": False, "error": exc.error}
            if exc.detail:
                call.response["response_metadata"] = {"messages": [exc.detail]}
            self._touch()
            return web.json_response(call.response)
        call.response = {"ok": True, **response}
        self._touch()
        return web.json_response(call.response)

    def _dispatch(self, call: SlackCall, token: str) -> dict[str, Any]:
        handler = self._handlers.get(call.method)
        if handler is None:
            raise Invalid("unknown_method")
        if call.method == "apps.connections.open":
            if not token.startswith("xapp-"):
                raise Invalid("not_allowed_token_type")
            if token != self.app_token:
                raise Invalid("invalid_auth")
            return handler(call)
        if not token.startswith("xoxb-"):
            raise Invalid("not_authed" if not token else "not_allowed_token_type")
        team = self.tokens.get(token)
        if team is None:
            raise Invalid("invalid_auth")
        call.team = team
        injected = self._injected.get(call.method)
        if injected:
            fault = injected.popleft()
            if fault.error == "ratelimited":
                raise _RateLimited(429 if fault.http_429 else 200, fault.retry_after)
            raise Invalid(fault.error)
        self._check_rate(call.method, team)
        return handler(call)

    def _check_rate(self, method: str, team: str) -> None:
        limit = self.limits.get(method)
        if limit is None:
            return
        now = time.monotonic()
        seen = self._history.setdefault((method, team), deque())
        while seen and seen[0] <= now - limit.per:
            seen.popleft()
        if len(seen) >= limit.calls:
            retry_after = max(1, int(seen[0] + limit.per - now + 0.999))
            raise _RateLimited(429, retry_after)
        seen.append(now)

    async def _respond(self, request: web.Request) -> web.Response:
        record = self.response_urls.get(request.match_info["id"])
        if record is None or record.uses >= RESPONSE_URL_USES:
            return web.Response(status=404, text="expired_url")
        try:
            body = await request.json()
        except ValueError:
            return web.Response(status=400, text="invalid_payload")
        if not isinstance(body, dict) or not (body.get("text") or body.get("blocks")):
            return web.Response(status=400, text="no_text")
        if "blocks" in body:
            try:
                validate_blocks(body["blocks"])
            except Invalid as exc:
                return web.Response(status=400, text=exc.error)
        record.uses += 1
        record.posts.append(body)
        self._touch()
        return web.Response(text="ok")


class _RateLimited(Exception):
    def __init__(self, status: int, retry_after: int) -> None:
        self.status = status
        self.retry_after = retry_after


def _error(error: str) -> web.Response:
    return web.json_response({"ok": False, "error": error})


def _bearer(request: web.Request) -> str:
    header = request.headers.get("Authorization", "")
    return header[len("Bearer ") :] if header.startswith("Bearer ") else ""
