"""The Slack fake: Web API methods, response_url endpoints, file uploads and a Socket Mode socket.

One route `/api/{method}` takes query, form and JSON arguments as slack_sdk sends them (in form
bodies `blocks` arrives as a JSON string). Errors come back the way Slack sends them: HTTP 200
with `{"ok": false, "error": ...}`, and rate limits as HTTP 429 + `Retry-After` + `ratelimited`.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import socket
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import WSMsgType, web

from tests.fakes.slack.records import (
    Ephemeral,
    Message,
    ResponseUrl,
    SlackCall,
    SocketAck,
)
from tests.fakes.slack.validate import (
    MAX_MARKDOWN_TEXT,
    MAX_TEXT,
    MAX_UPDATE_TEXT,
    Invalid,
    validate_blocks,
)

BOT_USER = "UBOT0001"
BOT_ID = "BBOT0001"
APP_ID = "A0PARLEY"
RESPONSE_URL_USES = 5
NATIVE_REFUSALS = ("feature_not_enabled", "unknown_method", "method_deprecated")

Handler = Callable[[SlackCall], dict[str, Any]]


@dataclass(slots=True)
class _Limit:
    calls: int
    per: float


@dataclass(slots=True)
class _Injected:
    error: str
    http_429: bool
    retry_after: int


class SlackFake:
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
        self.tokens = tokens or {"xoxb-test-bot-token": "T0001"}
        self.app_token = app_token
        self.native_streaming = native_streaming
        self.native_refusal = native_refusal
        self.calls: list[SlackCall] = []
        self.messages: dict[tuple[str, str], Message] = {}
        self.ephemerals: list[Ephemeral] = []
        self.response_urls: dict[str, ResponseUrl] = {}
        self.uploads: dict[str, bytes] = {}
        self.files: list[dict[str, Any]] = []
        self.acks: list[SocketAck] = []
        self.statuses: list[dict[str, Any]] = []
        self.limits: dict[str, _Limit] = {}
        if update_limit is not None:
            self.limit("chat.update", *update_limit)
        self._injected: dict[str, deque[_Injected]] = {}
        self._history: dict[tuple[str, str], deque[float]] = {}
        self._ts = itertools.count(1)
        self._ids = itertools.count(1)
        self._sockets: list[web.WebSocketResponse] = []
        self._socket_ready = asyncio.Event()
        self._changed = asyncio.Event()
        self._runner: web.AppRunner | None = None
        self._port = 0
        self._handlers: dict[str, Handler] = {
            "auth.test": self._auth_test,
            "chat.postMessage": self._post_message,
            "chat.update": self._update,
            "chat.postEphemeral": self._post_ephemeral,
            "chat.startStream": self._start_stream,
            "chat.appendStream": self._append_stream,
            "chat.stopStream": self._stop_stream,
            "assistant.threads.setStatus": self._set_status,
            "conversations.replies": self._replies,
            "files.getUploadURLExternal": self._upload_url,
            "files.completeUploadExternal": self._complete_upload,
            "apps.connections.open": self._connections_open,
        }

    # -- lifecycle ----------------------------------------------------------------------------

    async def start(self) -> SlackFake:
        app = web.Application(client_max_size=4 * 1024 * 1024)
        app.router.add_route("*", "/api/{method}", self._api)
        app.router.add_post("/respond/{id}", self._respond)
        app.router.add_post("/upload/{id}", self._upload)
        app.router.add_get("/link", self._link)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.1)
        await self._runner.setup()
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", 0))
        self._port = sock.getsockname()[1]
        await web.SockSite(self._runner, sock).start()
        return self

    async def close(self) -> None:
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
    def url(self) -> str:
        return f"http://127.0.0.1:{self._port}"

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

    def thread(self, channel: str, thread_ts: str) -> list[Message]:
        """The replies in a thread (not its parent), oldest first."""
        found = [
            m
            for m in self.messages.values()
            if m.channel == channel and m.thread_ts == thread_ts and m.ts != thread_ts
        ]
        return sorted(found, key=lambda m: m.ts)

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

    async def wait_for(self, predicate: Callable[[], object], within: float = 15.0) -> None:
        """Wait until `predicate()` is truthy, re-checking after every change the fake sees."""
        deadline = time.monotonic() + within
        while not predicate():
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError("timed out waiting for the Slack fake")
            self._changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), min(left, 0.2))

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

    # -- Socket Mode ----------------------------------------------------------------------------

    async def wait_socket(self, within: float = 15.0) -> None:
        await asyncio.wait_for(self._socket_ready.wait(), within)

    async def send_envelope(
        self, type_: str, payload: dict[str, Any], *, accepts_response_payload: bool = False
    ) -> str:
        """Push one envelope to the connected app; returns its envelope_id."""
        if not self._sockets:
            raise AssertionError("no Socket Mode connection")
        envelope_id = f"env-{next(self._ids)}"
        envelope = {
            "envelope_id": envelope_id,
            "type": type_,
            "payload": payload,
            "accepts_response_payload": accepts_response_payload,
            "retry_attempt": 0,
            "retry_reason": "",
        }
        await self._sockets[-1].send_str(json.dumps(envelope))
        return envelope_id

    async def wait_ack(self, envelope_id: str, within: float = 5.0) -> SocketAck:
        found: list[SocketAck] = []

        def acked() -> bool:
            found[:] = [a for a in self.acks if a.envelope_id == envelope_id]
            return bool(found)

        await self.wait_for(acked, within)
        return found[0]

    async def _link(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(autoping=True)
        await ws.prepare(request)
        self._sockets.append(ws)
        await ws.send_str(
            json.dumps(
                {
                    "type": "hello",
                    "num_connections": len(self._sockets),
                    "debug_info": {"host": "fake", "approximate_connection_time": 18060},
                    "connection_info": {"app_id": APP_ID},
                }
            )
        )
        self._socket_ready.set()
        try:
            async for msg in ws:
                if msg.type != WSMsgType.TEXT:
                    continue
                data = json.loads(msg.data)
                if "envelope_id" in data:
                    self.acks.append(
                        SocketAck(data["envelope_id"], data.get("payload"), time.monotonic())
                    )
                    self._touch()
        finally:
            self._sockets.remove(ws)
            if not self._sockets:
                self._socket_ready.clear()
        return ws

    # -- HTTP plumbing ----------------------------------------------------------------------------

    def _touch(self) -> None:
        self._changed.set()

    def _next_ts(self) -> str:
        return f"{1_760_000_000 + next(self._ts)}.{next(self._ts) % 1_000_000:06d}"

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

    # -- methods --------------------------------------------------------------------------------

    def _auth_test(self, call: SlackCall) -> dict[str, Any]:
        return {
            "url": "https://fake.slack.com/",
            "team": "Fake Team",
            "user": "parley",
            "team_id": call.team,
            "user_id": BOT_USER,
            "bot_id": BOT_ID,
            "is_enterprise_install": False,
        }

    def _message(self, call: SlackCall, *, ts_arg: str = "ts") -> Message:
        channel, ts = _required(call.args, "channel"), _required(call.args, ts_arg)
        message = self.messages.get((channel, ts))
        if message is None:
            raise Invalid("message_not_found")
        return message

    def _post_message(self, call: SlackCall) -> dict[str, Any]:
        args = call.args
        channel = _required(args, "channel")
        blocks = validate_blocks(args["blocks"]) if "blocks" in args else []
        text = str(args.get("text") or "")
        markdown = args.get("markdown_text")
        if markdown is not None:
            if text or blocks:
                raise Invalid("invalid_arguments", "markdown_text excludes text and blocks")
            if len(markdown) > MAX_MARKDOWN_TEXT:
                raise Invalid("markdown_text_too_long")
            text = markdown
        if not text and not blocks:
            raise Invalid("no_text")
        extra: dict[str, Any] = {}
        if len(text) > MAX_TEXT:
            text = text[:MAX_TEXT]
            extra["warning"] = "message_truncated"
            extra["response_metadata"] = {"warnings": ["message_truncated"]}
        thread_ts = args.get("thread_ts") or None
        message = Message(
            channel, self._next_ts(), text, BOT_USER, thread_ts, blocks, team=call.team or ""
        )
        message.edits.append(text)
        self.messages[(channel, message.ts)] = message
        return {"channel": channel, "ts": message.ts, "message": _wire(message)} | extra

    def _update(self, call: SlackCall) -> dict[str, Any]:
        message = self._message(call)
        args = call.args
        if not message.is_bot:
            raise Invalid("cant_update_message")
        if message.streaming:
            raise Invalid("message_is_streaming")
        text = str(args.get("text") or "")
        if len(text) > MAX_UPDATE_TEXT:
            raise Invalid("msg_too_long")
        blocks = validate_blocks(args["blocks"]) if "blocks" in args else None
        if not text and not blocks:
            raise Invalid("no_text")
        message.text = text
        if blocks is not None:
            message.blocks = blocks
        message.edits.append(text)
        return {"channel": message.channel, "ts": message.ts, "text": text}

    def _post_ephemeral(self, call: SlackCall) -> dict[str, Any]:
        args = call.args
        channel, user = _required(args, "channel"), _required(args, "user")
        blocks = validate_blocks(args["blocks"]) if "blocks" in args else []
        text = str(args.get("text") or "")
        if not text and not blocks:
            raise Invalid("no_text")
        self.ephemerals.append(Ephemeral(channel, user, text, args.get("thread_ts"), blocks))
        return {"message_ts": self._next_ts()}

    def _stream_text(self, args: dict[str, Any]) -> str:
        parts = []
        if args.get("markdown_text"):
            parts.append(str(args["markdown_text"]))
        for chunk in args.get("chunks") or []:
            if not isinstance(chunk, dict) or "type" not in chunk:
                raise Invalid("invalid_chunks")
            if chunk["type"] == "markdown_text":
                parts.append(str(chunk.get("text", "")))
        text = "".join(parts)
        if len(text) > MAX_MARKDOWN_TEXT:
            raise Invalid("msg_too_long")
        return text

    def _start_stream(self, call: SlackCall) -> dict[str, Any]:
        if not self.native_streaming:
            raise Invalid(self.native_refusal)
        args = call.args
        channel, thread_ts = _required(args, "channel"), _required(args, "thread_ts")
        if not channel.startswith("D") and not (
            args.get("recipient_user_id") and args.get("recipient_team_id")
        ):
            raise Invalid("missing_recipient_user_id")
        text = self._stream_text(args)
        message = Message(channel, self._next_ts(), text, BOT_USER, thread_ts, team=call.team or "")
        message.streaming = message.streamed = True
        message.edits.append(text)
        self.messages[(channel, message.ts)] = message
        return {"channel": channel, "ts": message.ts}

    def _streaming(self, call: SlackCall) -> Message:
        if not self.native_streaming:
            raise Invalid(self.native_refusal)
        message = self._message(call)
        if not message.streaming:
            raise Invalid("message_not_in_streaming_state")
        return message

    def _append_stream(self, call: SlackCall) -> dict[str, Any]:
        message = self._streaming(call)
        text = self._stream_text(call.args)
        if not text:
            raise Invalid("no_text")
        message.text += text
        message.edits.append(message.text)
        return {"channel": message.channel, "ts": message.ts}

    def _stop_stream(self, call: SlackCall) -> dict[str, Any]:
        message = self._streaming(call)
        message.text += self._stream_text(call.args)
        if "blocks" in call.args:
            message.blocks = validate_blocks(call.args["blocks"])
        message.streaming = False
        message.edits.append(message.text)
        return {"channel": message.channel, "ts": message.ts, "message": _wire(message)}

    def _set_status(self, call: SlackCall) -> dict[str, Any]:
        _required(call.args, "channel_id")
        _required(call.args, "thread_ts")
        self.statuses.append(dict(call.args))
        return {}

    def _replies(self, call: SlackCall) -> dict[str, Any]:
        channel, ts = _required(call.args, "channel"), _required(call.args, "ts")
        parent = self.messages.get((channel, ts))
        if parent is None:
            raise Invalid("thread_not_found")
        found = [parent, *self.thread(channel, ts)]
        return {"messages": [_wire(m) for m in found], "has_more": False}

    def _upload_url(self, call: SlackCall) -> dict[str, Any]:
        _required(call.args, "filename")
        length = int(_required(call.args, "length"))
        if length <= 0:
            raise Invalid("invalid_arguments")
        file_id = f"F{next(self._ids):07d}"
        self.uploads[file_id] = b""
        return {"upload_url": f"{self.url}/upload/{file_id}", "file_id": file_id}

    def _complete_upload(self, call: SlackCall) -> dict[str, Any]:
        files = call.args.get("files")
        if not isinstance(files, list) or not files:
            raise Invalid("invalid_arguments")
        done = []
        for entry in files:
            file_id = entry.get("id") if isinstance(entry, dict) else None
            if file_id not in self.uploads or not self.uploads[file_id]:
                raise Invalid("file_not_found")
            record = {
                "id": file_id,
                "title": entry.get("title", ""),
                "size": len(self.uploads[file_id]),
            }
            record |= {k: call.args.get(k) for k in ("channel_id", "thread_ts", "initial_comment")}
            self.files.append(record)
            done.append({"id": file_id, "title": record["title"]})
        return {"files": done}

    def _connections_open(self, call: SlackCall) -> dict[str, Any]:
        return {"url": f"ws://127.0.0.1:{self._port}/link"}

    async def _upload(self, request: web.Request) -> web.Response:
        file_id = request.match_info["id"]
        if file_id not in self.uploads:
            return web.Response(status=404, text="not found")
        self.uploads[file_id] = await request.read()
        self._touch()
        return web.Response(text=f"OK - {len(self.uploads[file_id])}")

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


def _required(args: dict[str, Any], name: str) -> str:
    value = args.get(name)
    if not value or not isinstance(value, str):
        raise Invalid("invalid_arguments", f"missing {name}")
    return value


def _wire(message: Message) -> dict[str, Any]:
    wire: dict[str, Any] = {
        "type": "message",
        "ts": message.ts,
        "text": message.text,
        "user": message.user,
        "blocks": message.blocks,
    }
    if message.is_bot:
        wire["bot_id"] = BOT_ID
    if message.thread_ts:
        wire["thread_ts"] = message.thread_ts
    return wire
