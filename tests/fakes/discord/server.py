"""FakeDiscord: state, lifecycle and the helpers tests use to act as users and to assert."""

from __future__ import annotations

import asyncio
import functools
import secrets
import socket
import time
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any

import pytest_asyncio
from aiohttp import web

from tests.fakes.discord import payloads as p
from tests.fakes.discord.gateway import Gateway, shard_of
from tests.fakes.discord.ratelimit import Buckets, BucketSpec, GlobalLimit
from tests.fakes.discord.records import Call, Guild, Interaction, Shown
from tests.fakes.discord.rest import ROUTES, TOKEN_TTL, RestHandlers
from tests.fakes.files import FileHost
from tests.fakes.network import round_trip

DEFAULT_BUCKETS = {
    "edit": BucketSpec(5, 1.0),  # per channel: observed ~5 per 5 s in production, fast for tests
    "create": BucketSpec(5, 1.0),
    "thread": BucketSpec(5, 1.0),
    # per interaction token: followup edits, @original edits, followups
    "webhook": BucketSpec(5, 1.0),
    "original": BucketSpec(5, 1.0),
    "followup": BucketSpec(5, 1.0),
}


class FakeDiscord(RestHandlers):
    """One guild ("Test Guild") with `channels` text channels, roles member/admin, users."""

    def __init__(
        self,
        *,
        token: str = "fake-bot-token",
        channels: int = 10,
        echo: bool = True,
        global_limit: BucketSpec | None = None,
    ) -> None:
        self.token = token
        self.rtt = 0.0
        """Seconds of network round trip on every REST call, half each way (benchmarks)."""
        self.echo = echo  # dispatch MESSAGE_CREATE for the bot's own messages, as Discord does
        self.recommended_shards = 1
        """What GET /gateway/bot recommends (`shards`)."""
        self.app_id = p.snowflake()
        self.bot_user = p.user(self.app_id, "Parley", bot=True)
        self.calls: list[Call] = []
        self.rate_limited: list[Call] = []  # every 429, per-route and global
        self.global_limited: list[Call] = []  # the global 429s only
        self.messages: dict[str, dict[str, Any]] = {}
        self.history: dict[str, list[str]] = {}  # message id -> contents after each edit
        self.timeline: list[Shown] = []  # every content a message showed, when (benchmarks)
        self.channels: dict[str, dict[str, Any]] = {}
        self.commands: dict[str, list[dict[str, Any]]] = {}  # guild id ("" = global) -> commands
        self.command_puts = 0
        self.interactions_by_id: dict[str, Interaction] = {}
        self.interactions_by_token: dict[str, Interaction] = {}
        self.files: list[tuple[str, bytes]] = []
        self.attachment_size_limit = 10_485_760  # bytes per file, as in interaction payloads
        self.users_by_id: dict[str, dict[str, Any]] = {self.app_id: self.bot_user}
        self.users: dict[str, dict[str, Any]] = {}
        self.member_roles: dict[str, list[str]] = {}
        self.buckets = Buckets(dict(DEFAULT_BUCKETS))
        self.max_active_threads = 1000  # per guild, as Discord's default (error 160006)
        # Off by default; set, it counts every REST request but interaction callbacks and webhooks.
        self.global_limit = GlobalLimit(global_limit) if global_limit is not None else None
        gid = p.snowflake()
        roles = {"@everyone": gid, "member": p.snowflake(), "admin": p.snowflake()}
        self.guild = Guild(gid, "Test Guild", roles, [])
        self.other_guilds: list[Guild] = []  # add_guild(): more servers the bot is in
        for i in range(channels):
            channel = p.text_channel(p.snowflake(), gid, f"chan-{i}", i)
            self.channels[channel["id"]] = channel
            self.guild.channels.append(channel["id"])
        for name, role in (("alice", "member"), ("bob", "member"), ("carol", "admin")):
            self.add_user(name, [role])
        self.cdn = FileHost()
        """Discord's CDN: where the attachments of users' messages are served (signed links)."""
        self.gateway = Gateway(
            lambda: self.token,
            self._ready_payload,
            lambda: [self._guild_create(g) for g in [self.guild, *self.other_guilds]],
        )
        self._runner: web.AppRunner | None = None
        self._port = 0

    # -- lifecycle -----------------------------------------------------------------------------

    async def start(self) -> FakeDiscord:
        app = web.Application(middlewares=[round_trip(lambda: self.rtt)])
        for method, path, name in ROUTES:
            app.router.add_route(
                method, "/api/v10" + path, functools.partial(self._rest, route=name)
            )
        app.router.add_get("/gateway", self.gateway.handle)
        await self.cdn.__aenter__()
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.1)
        await self._runner.setup()
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", 0))
        self._port = sock.getsockname()[1]
        await web.SockSite(self._runner, sock).start()
        return self

    async def close(self) -> None:
        await self.gateway.close()
        await self.cdn.__aexit__()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> FakeDiscord:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._port}"

    @property
    def api_base(self) -> str:
        return f"{self.url}/api/v10"

    @property
    def gateway_url(self) -> str:
        return f"ws://127.0.0.1:{self._port}/gateway"

    def env(self) -> dict[str, str]:
        return {
            "DISCORD_TOKEN": self.token,
            "DISCORD_API_BASE_URL": self.api_base,
            "DISCORD_GATEWAY_URL": self.gateway_url,
        }

    # -- state ---------------------------------------------------------------------------------

    @property
    def channel_ids(self) -> list[str]:
        return list(self.guild.channels)

    def add_user(self, name: str, roles: list[str]) -> dict[str, Any]:
        user = p.user(p.snowflake(), name)
        self.users[name] = user
        self.users_by_id[user["id"]] = user
        self.member_roles[user["id"]] = [self.guild.roles[r] for r in roles]
        return user

    def add_guild(self, name: str, *, channels: int = 2) -> Guild:
        """Another server the bot is in (call before the bot connects); the same users are members
        with no roles there."""
        gid = p.snowflake()
        guild = Guild(gid, name, {"@everyone": gid}, [])
        for i in range(channels):
            channel = p.text_channel(p.snowflake(), gid, f"{name}-chan-{i}", i)
            self.channels[channel["id"]] = channel
            guild.channels.append(channel["id"])
        self.other_guilds.append(guild)
        return guild

    def application_payload(self) -> dict[str, Any]:
        return {
            "id": self.app_id,
            "name": "Parley",
            "description": "",
            "icon": None,
            "rpc_origins": [],
            "bot_public": True,
            "bot_require_code_grant": False,
            "owner": p.user(p.snowflake(), "owner"),
            "verify_key": "0" * 64,
            "flags": 0,
            "team": None,
            "summary": "",
            "bot": self.bot_user,
        }

    def _ready_payload(self, shard: tuple[int, int] = (0, 1)) -> dict[str, Any]:
        guilds = [
            g for g in [self.guild, *self.other_guilds] if shard_of(g.id, shard[1]) == shard[0]
        ]
        return {
            "v": 10,
            "user": self.bot_user,
            "session_id": "fake-session",
            "resume_gateway_url": self.gateway_url,
            "guilds": [{"id": g.id, "unavailable": True} for g in guilds],
            "application": {"id": self.app_id, "flags": 0},
            "private_channels": [],
            "relationships": [],
            "shard": list(shard),
        }

    def _guild_create(self, guild: Guild | None = None) -> dict[str, Any]:
        guild = guild or self.guild
        roles = [
            {
                "id": rid,
                "name": name,
                "permissions": "2248473465835073",
                "position": i,
                "color": 0,
                "hoist": False,
                "managed": False,
                "mentionable": False,
                "flags": 0,
            }
            for i, (name, rid) in enumerate(guild.roles.items())
        ]
        return {
            "id": guild.id,
            "name": guild.name,
            "icon": None,
            "owner_id": p.snowflake(),
            "roles": roles,
            "emojis": [],
            "stickers": [],
            "features": [],
            "member_count": len(self.users) + 1,
            "joined_at": p.iso_now(),
            "large": False,
            "unavailable": False,
            "channels": [self.channels[c] for c in guild.channels],
            "threads": [],
            "members": [p.member(self.bot_user, [])],
            "voice_states": [],
            "presences": [],
            "stage_instances": [],
            "guild_scheduled_events": [],
            "premium_tier": 0,
            "verification_level": 0,
            "default_message_notifications": 0,
            "explicit_content_filter": 0,
            "mfa_level": 0,
            "nsfw_level": 0,
            "system_channel_flags": 0,
            "preferred_locale": "en-US",
            "afk_timeout": 300,
            "premium_progress_bar_enabled": False,
        }

    def guild_of(self, channel_id: str) -> str | None:
        return self.channels.get(channel_id, {}).get("guild_id")

    def store_message(
        self,
        channel_id: str,
        author: dict[str, Any],
        body: dict[str, Any],
        *,
        dispatch: bool = True,
    ) -> dict[str, Any]:
        message = p.message(
            p.snowflake(), channel_id, author, body, guild_id=self.guild_of(channel_id)
        )
        self.messages[message["id"]] = message
        shown = p.text_of(message)
        self.history[message["id"]] = [shown]
        self.timeline.append(Shown(time.monotonic(), channel_id, message["id"], shown))
        if dispatch and self.echo and author["id"] == self.app_id and self.gateway.connected:
            asyncio.get_running_loop().create_task(
                self.gateway.dispatch("MESSAGE_CREATE", dict(message))
            )
        return message

    def active_threads(self, guild_id: str) -> int:
        return sum(
            1
            for c in self.channels.values()
            if c.get("guild_id") == guild_id
            and "thread_metadata" in c
            and not c["thread_metadata"]["archived"]
        )

    async def create_thread(
        self, thread_id: str, parent: str, body: dict[str, Any]
    ) -> dict[str, Any]:
        thread = p.thread_channel(
            thread_id,
            self.guild_of(parent) or self.guild.id,
            parent,
            body["name"],
            self.app_id,
            body.get("auto_archive_duration") or 1440,
        )
        self.channels[thread_id] = thread
        if self.gateway.connected:
            await self.gateway.dispatch("THREAD_CREATE", thread | {"newly_created": True})
        return thread

    def dm_with(self, user_id: str) -> dict[str, Any]:
        for channel in self.channels.values():
            if channel["type"] == p.DM_CHANNEL and channel["recipients"][0]["id"] == user_id:
                return channel
        channel = p.dm_channel(p.snowflake(), self.users_by_id[user_id])
        self.channels[channel["id"]] = channel
        return channel

    # -- acting as users -----------------------------------------------------------------------

    async def wait_ready(self, within: float = 15.0) -> None:
        await asyncio.wait_for(self.gateway.identified.wait(), within)

    def _member(self, user: str) -> dict[str, Any]:
        u = self.users[user]
        return p.member(u, self.member_roles[u["id"]])

    def _interaction(
        self,
        kind: int,
        data: dict[str, Any],
        user: str,
        channel: str | None,
        message: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        channel = channel or (message["channel_id"] if message else self.channel_ids[0])
        ch = self.channels[channel]
        inter = Interaction(
            p.snowflake(),
            # Shaped like Discord's (base64 of "interaction:<id>:" then random), as long.
            "aW50ZXJhY3Rpb246" + secrets.token_urlsafe(150),
            kind,
            channel,
            ch.get("guild_id"),
            self.users[user]["id"],
            time.monotonic(),
        )
        payload: dict[str, Any] = {
            "id": inter.id,
            "application_id": self.app_id,
            "type": kind,
            "data": data,
            "token": inter.token,
            "version": 1,
            "channel_id": channel,
            "channel": ch,
            "app_permissions": "2248473465835073",
            "locale": "en-US",
            "entitlements": [],
            "authorizing_integration_owners": {"0": ch.get("guild_id") or self.guild.id},
            "attachment_size_limit": self.attachment_size_limit,
        }
        if ch.get("guild_id"):
            payload |= {
                "guild_id": ch["guild_id"],
                "guild_locale": "en-US",
                "member": self._member(user),
                "context": 0,
            }
        else:
            payload |= {"user": self.users[user], "context": 1}
        if message is not None:
            payload["message"] = message
            inter.message_id = message["id"]
        self.interactions_by_id[inter.id] = inter
        self.interactions_by_token[inter.token] = inter
        return payload

    def _command(self, name: str, guild: str | None) -> dict[str, Any]:
        for scope in [guild, ""] if guild else [""]:
            for command in self.commands.get(scope, []):
                if command["name"] == name:
                    return command
        raise LookupError(f"command /{name} was never synced")

    async def slash(
        self,
        name: str,
        options: dict[str, Any],
        *,
        user: str = "alice",
        channel: str | None = None,
        focused: str | None = None,
        sub: str | None = None,
    ) -> Interaction:
        """A slash command (or, with `focused`, an autocomplete request for that option);
        `sub` names a subcommand (`/persona create`), whose options `options` then are. An
        attachment option's value is (name, bytes, type): the file goes on the CDN and the
        option carries its id, the attachment itself in `resolved`, as Discord sends them."""
        channel = channel or self.channel_ids[0]
        command = self._command(name, self.guild_of(channel))
        declared = command.get("options", [])
        if sub is not None:
            found = [o for o in declared if o["name"] == sub and o["type"] == 1]
            if not found:
                raise LookupError(f"/{name} has no subcommand {sub!r}")
            declared = found[0].get("options", [])
        types = {o["name"]: o["type"] for o in declared}
        resolved: dict[str, Any] = {}
        for k, v in list(options.items()):
            if types.get(k) == 11:  # ATTACHMENT
                filename, data, kind = v
                url = self.cdn.cdn(filename, data, kind)
                attachment = {"id": p.snowflake(), "filename": filename, "size": len(data),
                              "content_type": kind, "url": url, "proxy_url": url}  # fmt: skip
                resolved.setdefault("attachments", {})[attachment["id"]] = attachment
                options = options | {k: attachment["id"]}
        opts = [
            {"name": k, "type": types[k], "value": v} | ({"focused": True} if k == focused else {})
            for k, v in options.items()
        ]
        if sub is not None:
            opts = [{"name": sub, "type": 1, "options": opts}]
        data = (
            {"id": command["id"], "name": name, "type": 1, "options": opts}
            | ({"guild_id": command["guild_id"]} if "guild_id" in command else {})
            | ({"resolved": resolved} if resolved else {})
        )
        payload = self._interaction(4 if focused else 2, data, user, channel)
        await self.gateway.dispatch("INTERACTION_CREATE", payload)
        return self.interactions_by_id[payload["id"]]

    def set_buttons(self, message_id: str, *custom_ids: str) -> None:
        """Put buttons on a message as an earlier (crashed) process may have left them."""
        buttons = [
            {"type": 2, "style": 2, "label": c.split(":")[1], "custom_id": c} for c in custom_ids
        ]
        self.messages[message_id]["components"] = [{"type": 1, "components": buttons}]

    def expire(self, inter: Interaction) -> None:
        """Age `inter` past its token's 15 minutes: webhook routes answer 401 (50027) from now."""
        inter.created -= TOKEN_TTL

    async def click(self, message_id: str, custom_id: str, *, user: str = "alice") -> Interaction:
        """A button click; like Discord, only on a button the message actually shows."""
        message = dict(self.messages[message_id])
        if custom_id not in self.custom_ids(message):
            raise AssertionError(f"message {message_id} shows no button {custom_id!r}")
        payload = self._interaction(
            3, {"custom_id": custom_id, "component_type": 2}, user, None, message
        )
        await self.gateway.dispatch("INTERACTION_CREATE", payload)
        return self.interactions_by_id[payload["id"]]

    async def say(
        self,
        content: str,
        *,
        user: str = "alice",
        channel: str | None = None,
        mention: bool = False,
        reply_to: str | None = None,
        files: Sequence[tuple[str, bytes, str]] = (),
        voice: bool = False,
        ttl: float = 86_400,
        pasted: Sequence[tuple[str, bytes, str]] = (),
    ) -> dict[str, Any]:
        """A user's message (MESSAGE_CREATE); `mention` prefixes `<@bot>`; `reply_to` an id;
        `files` (name, bytes, content type) are attachments on the CDN (`self.cdn`), their
        links expiring in `ttl` seconds; `voice` makes it a voice message (one OGG file);
        `pasted` (link, bytes, type) are image links the message holds, unfurled as Discord
        does: an `image` embed whose thumbnail's `proxy_url` is on the media proxy (the CDN)."""
        channel = channel or self.channel_ids[0]
        metadata = self.channels[channel].get("thread_metadata")
        if metadata and metadata["archived"] and not metadata["locked"]:
            # Like Discord: a member's message in an archived (unlocked) thread reopens it.
            metadata["archived"] = False
            await self.gateway.dispatch("THREAD_UPDATE", dict(self.channels[channel]))
        body: dict[str, Any] = {"content": f"<@{self.app_id}> {content}" if mention else content}
        if mention:
            body["mentions"] = [self.bot_user]
        if reply_to is not None:
            body["message_reference"] = {
                "message_id": reply_to,
                "channel_id": channel,
                "guild_id": self.guild_of(channel),
            }
            if self.messages[reply_to]["author"]["id"] == self.app_id:
                body["mentions"] = [self.bot_user]
        body["attachments"] = [
            {"id": p.snowflake(), "filename": name, "size": len(data), "content_type": kind,
             "url": (url := self.cdn.cdn(name, data, kind, ttl=ttl)), "proxy_url": url}
            | ({"duration_secs": 3.2, "waveform": "AAAA"} if voice else {})
            for name, data, kind in files
        ]  # fmt: skip
        if voice:
            body["flags"] = p.IS_VOICE_MESSAGE
        if pasted:
            body["content"] = " ".join([body["content"], *(link for link, _, _ in pasted)])
            body["embeds"] = [
                {"type": "image", "url": link,
                 "thumbnail": {"url": link, "proxy_url": self.cdn.cdn(link.rsplit("/", 1)[-1],
                               data, kind), "width": 40, "height": 30}}
                for link, data, kind in pasted
            ]  # fmt: skip
        author = self.users[user]
        message = self.store_message(channel, author, body, dispatch=False)
        event = dict(message)
        if self.guild_of(channel):
            event["member"] = {k: v for k, v in self._member(user).items() if k != "user"}
        if reply_to is not None:
            event["referenced_message"] = self.messages[reply_to]
        await self.gateway.dispatch("MESSAGE_CREATE", event)
        return message

    # -- asserting -----------------------------------------------------------------------------

    def calls_to(self, route: str) -> list[Call]:
        return [c for c in self.calls if c.route == route]

    def bot_messages(self, channel_id: str) -> list[dict[str, Any]]:
        return [
            m
            for m in self.messages.values()
            if m["channel_id"] == channel_id
            and m["author"]["id"] == self.app_id
            and "interaction_metadata" not in m
        ]

    def user_turn_messages(self, channel_id: str) -> list[dict[str, Any]]:
        return [
            m
            for m in self.messages.values()
            if m["channel_id"] == channel_id and m["author"]["id"] != self.app_id
        ]

    @staticmethod
    def custom_ids(message: dict[str, Any]) -> list[str]:
        return [
            c.get("custom_id", "")
            for row in message.get("components", [])
            for c in row.get("components", [])
        ]

    def finished(self, channel_id: str) -> dict[str, Any] | None:
        """The newest bot message in the channel with a Regenerate button (a finished reply)."""
        for message in reversed(self.bot_messages(channel_id)):
            if any(cid.startswith("parley:regenerate:") for cid in self.custom_ids(message)):
                return message
        return None

    async def wait_until(
        self, predicate: Callable[[], Any], within: float = 15.0, what: str = "condition"
    ) -> Any:
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            value = predicate()
            if value:
                return value
            await asyncio.sleep(0.02)
        raise AssertionError(f"timed out waiting for {what}")


@pytest_asyncio.fixture
async def discord_fake() -> AsyncIterator[FakeDiscord]:
    async with FakeDiscord() as fake:
        yield fake
