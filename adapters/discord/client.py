"""The discord.py client and the adapter that runs it until the app stops."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from functools import partial
from typing import Any

import aiohttp
import discord
import yarl
from discord import app_commands
from discord.gateway import DiscordWebSocket

from adapters.discord.access import admit
from adapters.discord.buttons import Buttons
from adapters.discord.commands import Commands
from adapters.discord.images import Images, tell_unknown
from adapters.discord.messages import Messages
from adapters.discord.recovery import Recovery
from adapters.discord.replies import tell
from adapters.discord.surface import RateLimitWatch
from adapters.discord.sync import sync_commands
from adapters.discord.turns import Turns
from adapters.discord.views import ImageAction, ReplyButton
from bot.app import App
from bot.commands.access import Access
from bot.config import Settings
from bot.pacing import TeamBudget
from bot.shared_rate import SharedRate, budget_name
from bot.sorry import apologize

log = logging.getLogger("parley.discord")


def point_at(settings: Settings) -> None:
    """Send all REST and gateway traffic where the settings say (a proxy, or a test fake).

    `Route.BASE` is read by every REST route, interaction callbacks and webhooks included;
    `DEFAULT_GATEWAY` by every fresh gateway connection. Both are discord.py class attributes
    (not public API: discord.py is pinned to 2.7.x).
    """
    discord.http.Route.BASE = settings.discord_api_base_url
    if settings.discord_gateway_url:
        DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(settings.discord_gateway_url)


class Tree(app_commands.CommandTree["ParleyClient"]):
    async def interaction_check(self, interaction: discord.Interaction[Any], /) -> bool:
        """The allow-lists, before any slash command or autocomplete runs."""
        return await admit(self.client.access, interaction)

    async def on_error(
        self, interaction: discord.Interaction[Any], error: app_commands.AppCommandError
    ) -> None:
        name = interaction.command.name if interaction.command else "?"
        await tell(interaction, apologize(log, error, "slash command /%s", name))


class ParleyClient(discord.Client):
    def __init__(self, app: App, watch: RateLimitWatch, **shards: Any) -> None:
        intents = discord.Intents.default()
        intents.message_content = True  # privileged: needed to read mentions and thread messages
        super().__init__(
            intents=intents,
            allowed_mentions=discord.AllowedMentions.none(),  # a model's text never pings anyone
            http_trace=watch.trace_config(),
            # Nothing here reads discord.py's message cache (replies are found through the store),
            # and its 1,000 messages, each up to 2,000 characters, are memory for nothing.
            max_messages=None,
            connector=aiohttp.TCPConnector(limit=app.settings.discord_max_connections),
            **shards,
        )
        self.app = app
        self.settings = app.settings
        self.access = access = Access.from_settings(app.settings)
        self.turns = Turns(app, watch)
        self.tree = Tree(self)
        self.images = Images(app, self.turns.background)
        self.commands = Commands(app, self.turns, access, self.images)
        self.commands.register(self.tree)
        self.buttons = Buttons(app, self.turns, self, access)
        self.recovery = Recovery(app, self, watch)
        self.messages = Messages(self.turns, access, self)
        self.synced: list[str] | None = None
        self.ready_event = asyncio.Event()
        self._watching = False

    async def setup_hook(self) -> None:
        self.add_dynamic_items(ReplyButton, ImageAction)
        self.synced = await sync_commands(self.tree, self.settings.discord_dev_guild_ids)

    async def on_ready(self) -> None:
        log.info("discord connected as %s (%s)", self.user, self.user.id if self.user else "?")
        self.ready_event.set()
        if self._watching:
            return  # on_ready fires again after a fresh IDENTIFY
        self._watching = True
        self.app.watch_interrupted_turns("discord", self.recovery.finish)
        self.app.watch_unknown_images("discord", partial(tell_unknown, self))

    async def on_message(self, message: discord.Message) -> None:
        try:
            await self.messages.on_message(message)
        except Exception as exc:
            text = apologize(log, exc, "message %s in channel %s", message.id, message.channel.id)
            with contextlib.suppress(discord.HTTPException):
                await message.channel.send(text, reference=message)

    async def on_error(self, event_method: str, /, *args: Any, **kwargs: Any) -> None:
        log.exception("discord event %s failed", event_method)


class ShardedParleyClient(ParleyClient, discord.AutoShardedClient):
    """Some shards of the bot's gateway connection (DISCORD_SHARD_IDS of DISCORD_SHARD_COUNT,
    all when no ids are set): each guild's events come through its shard only."""


def new_client(app: App, watch: RateLimitWatch) -> ParleyClient:
    settings = app.settings
    if settings.discord_shard_count is None:
        return ParleyClient(app, watch)
    ids = settings.discord_shard_ids or None
    log.info("discord shards %s of %d", ids or "all", settings.discord_shard_count)
    return ShardedParleyClient(app, watch, shard_count=settings.discord_shard_count, shard_ids=ids)


class DiscordAdapter:
    name = "discord"

    def __init__(self, app: App) -> None:
        self.app = app
        settings = app.settings
        self.watch = RateLimitWatch(
            # One budget for the whole process: Discord counts the bot's requests, not a channel's.
            budget=TeamBudget(settings.discord_global_rate_per_second * 60),
            api_base=settings.discord_api_base_url,
        )
        self.client: ParleyClient | None = None
        app.web.add_readiness_check(self._ready)

    async def _ready(self) -> tuple[str, bool]:
        """/readyz: the gateway said READY (so events flow) and the client is not closing.

        Not `client.is_ready()`: discord.py sets that only after its guild-loading wait, while
        interactions are already being served.
        """
        client = self.client
        connected = client is not None and client.user is not None and not client.is_closed()
        return "discord", connected

    async def run(self, stop: asyncio.Event) -> None:
        settings = self.app.settings
        if settings.discord_token is None:
            raise RuntimeError("DISCORD_TOKEN is not set")
        point_at(settings)
        token = settings.discord_token.get_secret_value()
        assert self.watch.budget is not None
        shared = SharedRate(self.app.store, budget_name("discord", token), [self.watch.budget])
        await shared.refresh()  # the processes of this bot split its global rate
        sharing = asyncio.create_task(shared.run(), name="discord-rate-share")
        client = self.client = new_client(self.app, self.watch)
        async with client:
            runner = asyncio.create_task(client.start(token), name="discord-client")
            stopper = asyncio.create_task(stop.wait())
            try:
                await asyncio.wait({runner, stopper}, return_when=asyncio.FIRST_COMPLETED)
                if runner.done():
                    runner.result()  # a login failure or a fatal gateway close: report it
                    return
                # Let running replies finish their edits before the connection goes away.
                grace = settings.shutdown_grace_seconds
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.app.engine.wait_idle(), grace)
                await client.turns.background.drain(grace, cancel=False)
            finally:
                stopper.cancel()
                # discord.py's pending "ready" task would fire after close (loop gone) if we stop
                # within guild_ready_timeout of connecting.
                ready_task = getattr(client._connection, "_ready_task", None)
                if ready_task is not None:
                    ready_task.cancel()
                await client.close()
                if not runner.done():
                    runner.cancel()
                sharing.cancel()
                await asyncio.gather(runner, sharing, return_exceptions=True)
