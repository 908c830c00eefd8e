"""REST handlers of the fake (a mixin of FakeDiscord, which owns the state)."""

from __future__ import annotations

import json
import mimetypes
import re
import time
from typing import TYPE_CHECKING, Any

from aiohttp import BodyPartReader, web

from tests.fakes.discord import payloads as p
from tests.fakes.discord.ratelimit import Verdict
from tests.fakes.discord.records import Call, Shown
from tests.fakes.discord.validate import message_errors, status_of, thread_errors

if TYPE_CHECKING:
    from tests.fakes.discord.server import FakeDiscord

JSON = "application/json"
INTERACTION_WINDOW = 3.0
TOKEN_TTL = 900.0
"""Seconds an interaction token is good for @original edits and followups (15 minutes)."""
CONTENT_TYPES = (
    "Expected \"Content-Type\" header to be one of {'application/json', 'multipart/form-data'}."
)


def reply(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    """JSON with exactly `application/json`: discord.py parses nothing else as JSON."""
    if status == 204:  # no body, and like Discord no Content-Type (discord.py would parse "")
        return web.Response(status=204, headers=headers or {})
    all_headers = {"Content-Type": JSON} | (headers or {})
    return web.Response(body=json.dumps(data).encode(), status=status, headers=all_headers)


def error(status: int, code: int, message: str, **extra: Any) -> web.Response:
    return reply({"code": code, "message": message, **extra}, status)


def _field(name: str, what: str) -> dict[str, Any]:
    text = {"filename": "A file needs a filename.", "ids": "Attachments must match the files."}
    message = text.get(what, f"Unknown form field {name!r}.")
    return {name: {"_errors": [{"code": "BASE_TYPE_INVALID", "message": message}]}}


ROUTES: list[tuple[str, str, str]] = [
    ("GET", "/users/@me", "me"),
    ("GET", "/oauth2/applications/@me", "application"),
    ("GET", "/gateway", "gateway"),
    ("GET", "/gateway/bot", "gateway"),
    ("GET", "/applications/{app}/commands", "commands.get"),
    ("PUT", "/applications/{app}/commands", "commands.put"),
    ("GET", "/applications/{app}/guilds/{guild}/commands", "commands.get"),
    ("PUT", "/applications/{app}/guilds/{guild}/commands", "commands.put"),
    ("GET", "/channels/{channel}", "channel.get"),
    ("PATCH", "/channels/{channel}", "channel.edit"),
    ("POST", "/channels/{channel}/typing", "typing"),
    ("POST", "/channels/{channel}/messages", "message.create"),
    ("GET", "/channels/{channel}/messages/{message}", "message.get"),
    ("PATCH", "/channels/{channel}/messages/{message}", "message.edit"),
    ("DELETE", "/channels/{channel}/messages/{message}", "message.delete"),
    ("POST", "/channels/{channel}/messages/{message}/threads", "thread.from_message"),
    ("POST", "/channels/{channel}/threads", "thread.create"),
    ("POST", "/users/@me/channels", "dm.open"),
    ("POST", "/interactions/{iid}/{token}/callback", "interaction.callback"),
    ("GET", "/webhooks/{app}/{token}/messages/@original", "original.get"),
    ("PATCH", "/webhooks/{app}/{token}/messages/@original", "original.edit"),
    ("DELETE", "/webhooks/{app}/{token}/messages/@original", "original.delete"),
    ("PATCH", "/webhooks/{app}/{token}/messages/{message}", "followup.edit"),
    ("POST", "/webhooks/{app}/{token}", "followup.create"),
]
NO_BOT_AUTH = ("interaction.", "original.", "followup.")
FILE_PART = re.compile(r"files\[\d{1,2}\]")
THREAD_EDITS = {"name", "archived", "locked", "auto_archive_duration"}
BUCKETED = {
    "message.create": "create",
    "message.edit": "edit",
    "thread.from_message": "thread",
    "followup.create": "followup",
    "followup.edit": "webhook",
    "original.edit": "original",
}
"""Routes with a per-route bucket; the major parameter is the channel, or for the interaction
webhook routes the interaction token (observed: 5 @original edits before a reset)."""


def _exempt_from_global(call: Call) -> bool:
    """Interaction callbacks and interaction webhooks are not bound by the global limit."""
    return call.route == "interaction.callback" or call.path.startswith("/webhooks/")


def _peer(request: web.Request) -> str:
    """The client's address and port: one per connection the bot opened."""
    peer = request.transport.get_extra_info("peername") if request.transport else None
    return f"{peer[0]}:{peer[1]}" if peer else ""


class RestHandlers:
    async def _rest(self: FakeDiscord, request: web.Request, *, route: str) -> web.StreamResponse:
        call = Call(
            request.method,
            request.path.removeprefix("/api/v10"),
            route,
            None,
            {k.lower(): v for k, v in request.headers.items()},
            time.monotonic(),
            dict(request.match_info),
            peer=_peer(request),
        )
        self.calls.append(call)
        response = await self._answer(request, call)
        call.status = response.status
        call.answered_at = time.monotonic()
        return response

    async def _answer(self: FakeDiscord, request: web.Request, call: Call) -> web.StreamResponse:
        if (
            not call.route.startswith(NO_BOT_AUTH)
            and call.headers.get("authorization") != f"Bot {self.token}"
        ):
            return error(401, 0, "401: Unauthorized")
        if request.can_read_body:
            kind = request.headers.get("Content-Type", "")
            if kind == JSON:
                try:
                    call.body = json.loads(await request.read())
                except ValueError:
                    return error(400, 50109, "The request body contains invalid JSON.")
            elif kind.startswith("multipart/form-data"):
                if (problem := await self._read_multipart(request, call)) is not None:
                    return problem
            else:
                return error(
                    400,
                    50035,
                    "Invalid Form Body",
                    errors={
                        "_errors": [
                            {
                                "code": "CONTENT_TYPE_INVALID",
                                "message": CONTENT_TYPES,
                            }
                        ]
                    },
                )
        if call.path.startswith("/webhooks/") and (expired := self._expired(call)) is not None:
            return expired
        if self.global_limit is not None and not _exempt_from_global(call):
            verdict = self.global_limit.take()
            if not verdict.allowed:
                self.global_limited.append(call)
                return self._limited(call, verdict, is_global=True)
        bucket = BUCKETED.get(call.route)
        if bucket is not None:
            major = call.params.get("channel") or call.params.get("token", "")
            verdict = self.buckets.take(bucket, major)
            if not verdict.allowed:
                return self._limited(call, verdict, is_global=False)
            response = await self._route(call)
            if response.status < 300:
                response.headers.update(verdict.headers)
            return response
        return await self._route(call)

    def _limited(
        self: FakeDiscord, call: Call, verdict: Verdict, *, is_global: bool
    ) -> web.Response:
        self.rate_limited.append(call)
        body = {
            "message": "You are being rate limited.",
            "retry_after": round(verdict.retry_after, 3),
            "global": is_global,
        }
        return reply(body, 429, verdict.headers)

    async def _read_multipart(
        self: FakeDiscord, request: web.Request, call: Call
    ) -> web.Response | None:
        """payload_json plus files[n] parts, as Discord takes uploads; an error response or None."""
        reader = await request.multipart()
        async for part in reader:
            if not isinstance(part, BodyPartReader):
                return error(400, 50035, "Invalid Form Body")
            name = part.name or ""
            data = await part.read(decode=False)
            call.parts.append(name)
            if name == "payload_json":
                try:
                    call.body = json.loads(data)
                except ValueError:
                    return error(400, 50109, "The request body contains invalid JSON.")
            elif FILE_PART.fullmatch(name):
                if not part.filename:
                    return error(400, 50035, "Invalid Form Body", errors=_field(name, "filename"))
                if len(data) > self.attachment_size_limit:
                    return error(413, 40005, "Request entity too large")
                call.files.append((part.filename, bytes(data)))
            else:
                return error(400, 50035, "Invalid Form Body", errors=_field(name, "unknown"))
        if call.body is None and not call.files:
            return error(400, 50006, "Cannot send an empty message")
        declared = (call.body or {}).get("attachments") or []
        ids = {str(a.get("id")) for a in declared if isinstance(a, dict)}
        missing = [str(i) for i in range(len(call.files)) if str(i) not in ids]
        if declared and (missing or len(ids) != len(call.files)):
            return error(400, 50035, "Invalid Form Body", errors=_field("attachments", "ids"))
        return None

    async def _route(self: FakeDiscord, call: Call) -> web.Response:
        handler = getattr(self, "_r_" + call.route.replace(".", "_"))
        result: web.Response = await handler(call)
        return result

    # -- identity and commands ---------------------------------------------------------------

    async def _r_me(self: FakeDiscord, call: Call) -> web.Response:
        return reply(self.bot_user)

    async def _r_application(self: FakeDiscord, call: Call) -> web.Response:
        return reply(self.application_payload())

    async def _r_gateway(self: FakeDiscord, call: Call) -> web.Response:
        return reply(
            {
                "url": self.gateway_url,
                "shards": self.recommended_shards,
                "session_start_limit": {
                    "total": 1000,
                    "remaining": 999,
                    "reset_after": 0,
                    "max_concurrency": 1,
                },
            }
        )

    async def _r_commands_get(self: FakeDiscord, call: Call) -> web.Response:
        return reply(self.commands.get(call.params.get("guild", ""), []))

    async def _r_commands_put(self: FakeDiscord, call: Call) -> web.Response:
        guild = call.params.get("guild", "")
        stored = []
        for command in call.body or []:
            if (
                not 1 <= len(command.get("name", "")) <= 32
                or len(command.get("description", "")) > 100
            ):
                return error(400, 50035, "Invalid Form Body")
            stored.append(
                command
                | {"id": p.snowflake(), "application_id": self.app_id, "version": p.snowflake()}
                | ({"guild_id": guild} if guild else {})
            )
        self.commands[guild] = stored
        self.command_puts += 1
        return reply(stored)

    # -- channels and messages ---------------------------------------------------------------

    async def _r_channel_get(self: FakeDiscord, call: Call) -> web.Response:
        channel = self.channels.get(call.params["channel"])
        return reply(channel) if channel else error(404, 10003, "Unknown Channel")

    async def _r_channel_edit(self: FakeDiscord, call: Call) -> web.Response:
        """Only what threads take here: name, archived, locked, auto_archive_duration."""
        channel = self.channels.get(call.params["channel"])
        if channel is None:
            return error(404, 10003, "Unknown Channel")
        body = call.body or {}
        if channel["type"] != p.PUBLIC_THREAD or set(body) - THREAD_EDITS:
            return error(400, 50035, "Invalid Form Body")
        if "name" in body and (problem := thread_errors({"name": body["name"]})) is not None:
            return reply(problem, 400)
        if "name" in body:
            channel["name"] = body["name"]
        metadata = channel["thread_metadata"]
        for key in ("archived", "locked", "auto_archive_duration"):
            if key in body:
                metadata[key] = body[key]
        if "archived" in body:
            metadata["archive_timestamp"] = p.iso_now()
        if self.gateway.connected:
            await self.gateway.dispatch("THREAD_UPDATE", dict(channel))
        return reply(channel)

    async def _r_typing(self: FakeDiscord, call: Call) -> web.Response:
        return reply(None, 204)

    async def _r_dm_open(self: FakeDiscord, call: Call) -> web.Response:
        return reply(self.dm_with((call.body or {}).get("recipient_id", "")))

    async def _r_message_create(self: FakeDiscord, call: Call) -> web.Response:
        channel = call.params["channel"]
        if channel not in self.channels:
            return error(404, 10003, "Unknown Channel")
        body = self._with_attachments(call)
        if (problem := message_errors(body)) is not None:
            return reply(problem, status_of(problem))
        return reply(self.store_message(channel, self.bot_user, body))

    async def _r_message_get(self: FakeDiscord, call: Call) -> web.Response:
        found = self.messages.get(call.params["message"])
        if found is None or found["channel_id"] != call.params["channel"]:
            return error(404, 10008, "Unknown Message")
        return reply(found)

    async def _r_message_edit(self: FakeDiscord, call: Call) -> web.Response:
        found = self.messages.get(call.params["message"])
        if found is None or found["channel_id"] != call.params["channel"]:
            return error(404, 10008, "Unknown Message")
        if found["author"]["id"] != self.bot_user["id"]:
            return error(403, 50005, "Cannot edit a message authored by another user")
        return self._edit(found, self._with_attachments(call))

    async def _r_message_delete(self: FakeDiscord, call: Call) -> web.Response:
        if self.messages.pop(call.params["message"], None) is None:
            return error(404, 10008, "Unknown Message")
        return reply(None, 204)

    def _edit(self: FakeDiscord, found: dict[str, Any], body: dict[str, Any]) -> web.Response:
        if (problem := message_errors(body, edit=True, current=found)) is not None:
            return reply(problem, status_of(problem))
        for key in ("content", "embeds", "components", "attachments"):
            if key in body:
                found[key] = (
                    body[key] if body[key] is not None else ([] if key != "content" else "")
                )
        if "flags" in body and body["flags"] is not None:
            found["flags"] = (found["flags"] & p.EPHEMERAL) | (int(body["flags"]) & ~p.LOADING)
        found["flags"] &= ~p.LOADING
        found["edited_timestamp"] = p.iso_now()
        shown = p.text_of(found)
        self.history.setdefault(found["id"], []).append(shown)
        self.timeline.append(Shown(time.monotonic(), found["channel_id"], found["id"], shown))
        return reply(found)

    def _with_attachments(self: FakeDiscord, call: Call) -> dict[str, Any]:
        body = dict(call.body or {})
        if call.files:
            body["attachments"] = [
                {
                    "id": p.snowflake(),
                    "filename": name,
                    "size": len(data),
                    "content_type": mimetypes.guess_type(name)[0] or "application/octet-stream",
                    "url": f"{self.url}/cdn/{name}",
                    "proxy_url": f"{self.url}/cdn/{name}",
                }
                for name, data in call.files
            ]
            self.files.extend(call.files)
        return body

    # -- threads -----------------------------------------------------------------------------

    async def _r_thread_from_message(self: FakeDiscord, call: Call) -> web.Response:
        channel, message = call.params["channel"], call.params["message"]
        found = self.messages.get(message)
        if found is None or found["channel_id"] != channel:
            return error(404, 10008, "Unknown Message")
        if message in self.channels:
            return error(400, 160004, "A thread has already been created for this message")
        if (problem := thread_errors(call.body or {})) is not None:
            return reply(problem, 400)
        if (full := self._threads_full(channel)) is not None:
            return full
        return reply(await self.create_thread(message, channel, call.body or {}), 201)

    async def _r_thread_create(self: FakeDiscord, call: Call) -> web.Response:
        if (problem := thread_errors(call.body or {})) is not None:
            return reply(problem, 400)
        if (full := self._threads_full(call.params["channel"])) is not None:
            return full
        return reply(
            await self.create_thread(p.snowflake(), call.params["channel"], call.body or {}), 201
        )

    def _threads_full(self: FakeDiscord, channel: str) -> web.Response | None:
        guild = self.guild_of(channel) or self.guild.id
        if self.active_threads(guild) >= self.max_active_threads:
            return error(400, 160006, "Maximum number of active threads reached")
        return None

    # -- interactions ------------------------------------------------------------------------

    async def _r_interaction_callback(self: FakeDiscord, call: Call) -> web.Response:
        inter = self.interactions_by_id.get(call.params["iid"])
        if inter is None or inter.token != call.params["token"]:
            return error(404, 10062, "Unknown interaction")
        if inter.ack_type is not None:
            return error(400, 40060, "Interaction has already been acknowledged.")
        if call.at - inter.created > INTERACTION_WINDOW:
            return error(404, 10062, "Unknown interaction")
        body = call.body or {}
        kind, data = body.get("type"), dict(body.get("data") or {})
        result: dict[str, Any] = {"interaction": {"id": inter.id, "type": inter.type}}
        if kind in (4, 5):
            if (
                kind == 4
                and (problem := message_errors(self._with_attachments(call) | data)) is not None
            ):
                return reply(problem, status_of(problem))
            flags = int(data.get("flags") or 0) | (p.LOADING if kind == 5 else 0)
            stored = self.store_message(
                inter.channel_id,
                self.bot_user,
                data | {"flags": flags},
                dispatch=not flags & p.EPHEMERAL,
            )
            stored["interaction_metadata"] = {
                "id": inter.id,
                "type": inter.type,
                "user": self.users_by_id[inter.user_id],
            }
            inter.original_id = stored["id"]
            result["interaction"] |= {
                "response_message_id": stored["id"],
                "response_message_loading": kind == 5,
                "response_message_ephemeral": bool(flags & p.EPHEMERAL),
            }
            result["resource"] = {"type": kind, "message": stored}
        elif kind in (6, 7):
            if inter.message_id is None:
                return error(
                    400,
                    50035,
                    "Invalid Form Body",
                    errors={
                        "type": {
                            "_errors": [
                                {
                                    "code": "INTERACTION_RESPONSE_TYPE_INVALID",
                                    "message": "Interaction response type is invalid",
                                }
                            ]
                        }
                    },
                )
            # Like Discord, @original of a component interaction is the message clicked on.
            inter.original_id = inter.original_id or inter.message_id
            if kind == 7:
                response = self._edit(self.messages[inter.message_id], data)
                if response.status != 200:
                    return response
                result["resource"] = {"type": 7, "message": self.messages[inter.message_id]}
        elif kind == 8:
            choices = data.get("choices") or []
            if len(choices) > 25:
                return reply(
                    {
                        "code": 50035,
                        "message": "Invalid Form Body",
                        "errors": {
                            "data": {
                                "choices": {
                                    "_errors": [
                                        {
                                            "code": "BASE_TYPE_MAX_LENGTH",
                                            "message": "Must be 25 or fewer in length.",
                                        }
                                    ]
                                }
                            }
                        },
                    },
                    400,
                )
            inter.choices = choices
        else:
            return error(400, 50035, "Invalid Form Body")
        inter.ack_type, inter.acked_at = kind, call.at
        return reply(result)

    def _original(self: FakeDiscord, call: Call) -> dict[str, Any] | None:
        inter = self.interactions_by_token.get(call.params["token"])
        if inter is None or inter.original_id is None:
            return None
        return self.messages.get(inter.original_id)

    def _expired(self: FakeDiscord, call: Call) -> web.Response | None:
        """Like Discord: 401 (50027) for a token past its 15 minutes, on every webhook route."""
        inter = self.interactions_by_token.get(call.params["token"])
        if inter is not None and call.at - inter.created > TOKEN_TTL:
            return error(401, 50027, "Invalid Webhook Token")
        return None

    async def _r_original_get(self: FakeDiscord, call: Call) -> web.Response:
        found = self._original(call)
        return reply(found) if found else error(404, 10008, "Unknown Message")

    async def _r_original_edit(self: FakeDiscord, call: Call) -> web.Response:
        found = self._original(call)
        if found is None:
            return error(404, 10008, "Unknown Message")
        return self._edit(found, self._with_attachments(call))

    async def _r_original_delete(self: FakeDiscord, call: Call) -> web.Response:
        found = self._original(call)
        if found is None:
            return error(404, 10008, "Unknown Message")
        self.messages.pop(found["id"], None)
        return reply(None, 204)

    async def _r_followup_create(self: FakeDiscord, call: Call) -> web.Response:
        inter = self.interactions_by_token.get(call.params["token"])
        if inter is None or inter.ack_type is None:
            return error(404, 10015, "Unknown Webhook")
        body = self._with_attachments(call)
        if (problem := message_errors(body)) is not None:
            return reply(problem, status_of(problem))
        stored = self.store_message(
            inter.channel_id,
            self.bot_user,
            body,
            dispatch=not int(body.get("flags") or 0) & p.EPHEMERAL,
        )
        stored["webhook_id"] = self.app_id  # interaction followups come from the app's webhook
        inter.followups.append(stored["id"])
        return reply(stored)

    async def _r_followup_edit(self: FakeDiscord, call: Call) -> web.Response:
        inter = self.interactions_by_token.get(call.params["token"])
        found = self.messages.get(call.params["message"])
        if inter is None or found is None or found["id"] not in inter.followups:
            return error(404, 10008, "Unknown Message")
        return self._edit(found, self._with_attachments(call))
