"""Composition root: Settings -> catalog, store, providers, router, engine."""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from typing import Any, Protocol

from bot.attachments import AttachmentReader
from bot.catalog import Catalog, UnknownModel
from bot.clock import SYSTEM_CLOCK, Clock
from bot.config import ConfigurationError, Settings
from bot.engine.chat import ChatEngine
from bot.engine.conversations import ConversationService
from bot.engine.moderation import Moderator, build_moderator
from bot.engine.personas import PersonaService
from bot.engine.usage import ChatLimits, UsageService
from bot.images import ImageEngine, build_image_engine
from bot.images.health import register as register_image_health
from bot.llm.registry import ProviderRegistry
from bot.llm.router import LLMRouter
from bot.ops.metrics import Metrics
from bot.ops.web import WebServer
from bot.resilience.breaker import BreakerBoard, BreakerPolicy
from bot.store import InterruptedTurn, Store
from bot.store.engine import POOL_SIZE
from bot.store.records import ImageJob
from bot.tools import Toolboxes
from bot.tools.mcp import McpServers
from bot.tools.search import WebSearch
from bot.voice import build_transcriber


def build_catalog(settings: Settings) -> Catalog:
    try:
        catalog = Catalog.load(settings.models, allow_unpriced=settings.allow_unpriced_models)
        catalog.resolve(settings.default_model)
    except UnknownModel as exc:
        name = "DEFAULT_MODEL" if "unknown model" in str(exc) else "BOT_CONFIG"
        raise ConfigurationError(f"{name}: {exc}") from None
    fallback = settings.vision_fallback_model
    try:
        if fallback and not catalog.resolve(fallback).capabilities.vision:
            raise ConfigurationError(f"VISION_FALLBACK_MODEL: {fallback} cannot see images")
    except UnknownModel as exc:
        raise ConfigurationError(f"VISION_FALLBACK_MODEL: {exc}") from None
    return catalog


def build_router(settings: Settings, catalog: Catalog, *, clock: Clock = SYSTEM_CLOCK) -> LLMRouter:
    policy = BreakerPolicy(
        failure_threshold=settings.circuit_breaker_failure_threshold,
        failure_window=settings.circuit_breaker_failure_window_ms / 1000,
        open_timeout=settings.circuit_breaker_timeout_ms / 1000,
        success_threshold=settings.circuit_breaker_success_threshold,
    )
    return LLMRouter(
        ProviderRegistry.from_settings(settings),
        catalog,
        BreakerBoard(policy, clock=clock),
        clock=clock,
        retry_budget=settings.llm_retry_max_wait,
    )


async def open_store(url: str, *, migrate: bool = True, pool_size: int = POOL_SIZE) -> Store:
    try:
        return await Store.open(url, migrate=migrate, pool_size=pool_size)
    except Exception as exc:  # any driver or URL problem becomes one line naming the setting
        detail = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ConfigurationError(f"DATABASE_URL: cannot open the database: {detail}") from None


log = logging.getLogger("parley.app")

ADAPTER_GROUP = "parley.adapters"
"""Entry-point group naming each platform adapter's factory (see pyproject.toml).

The core finds adapters by name at run time instead of importing them: `adapters -> bot`, never
the other way.
"""


class PlatformAdapter(Protocol):
    """One chat platform connected to the engine."""

    name: str

    async def run(self, stop: asyncio.Event) -> None:
        """Connect and serve until `stop` is set (or, for the console, the user leaves)."""
        ...


AdapterFactory = Callable[["App"], PlatformAdapter]

UnknownImagesCallback = Callable[[ImageJob], Coroutine[Any, Any, None]]
"""An adapter's way of telling users that their image's outcome is unknown."""
InterruptedTurnsCallback = Callable[[InterruptedTurn], Coroutine[Any, Any, None]]
"""An adapter's way of finishing, on its platform, replies a dead process left streaming."""
"""Builds an adapter; may mount routes on `app.web`, which starts only after every factory ran."""


def load_adapter(name: str) -> AdapterFactory:
    found = entry_points(group=ADAPTER_GROUP, name=name)
    if not found:
        raise ConfigurationError(
            f"no {name} adapter in this installation (reinstall with `pip install -e .`)"
        )
    factory: AdapterFactory = next(iter(found)).load()
    return factory


@dataclass(slots=True)
class App:
    settings: Settings
    catalog: Catalog
    store: Store
    router: LLMRouter
    engine: ChatEngine
    web: WebServer = field(default_factory=WebServer)
    interrupted: list[InterruptedTurn] = field(default_factory=list)
    """Turns found abandoned at start-up (their process died mid-reply), until an adapter
    takes them (watch_interrupted_turns)."""
    images: ImageEngine | None = None
    unknown_images: list[ImageJob] = field(default_factory=list)
    """Image jobs found abandoned at start-up (outcome unknown, never retried)."""
    _image_watchers: list[tuple[str, UnknownImagesCallback]] = field(default_factory=list)
    _turn_watchers: list[tuple[str, InterruptedTurnsCallback]] = field(default_factory=list)
    _notices: set[asyncio.Task[None]] = field(default_factory=set)
    # issue 6: what the adapters call for /history /archive /export /new, /persona, /usage
    conversations: ConversationService | None = None
    personas: PersonaService | None = None
    usage: UsageService | None = None
    metrics: Metrics | None = None
    moderator: Moderator | None = None
    tools: McpServers | None = None
    """The MCP servers' connections (None: none configured)."""
    search: WebSearch | None = None

    @classmethod
    async def build(cls, settings: Settings, *, clock: Clock = SYSTEM_CLOCK) -> App:
        catalog = build_catalog(settings)
        router = build_router(settings, catalog, clock=clock)
        store = await open_store(settings.database_url, pool_size=settings.database_pool_size)
        moderator = build_moderator(settings)
        metrics = Metrics()
        metrics.watch_breakers(router.breakers.snapshots)
        personas = PersonaService(store, catalog, default_model=settings.default_model)
        images = build_image_engine(settings, store, clock=clock)
        tools = await start_tools(settings)
        search = build_search(settings)
        boxes = [box for box in (tools, search) if box is not None]
        personas.toolbox = Toolboxes(*boxes) if boxes else None
        engine = ChatEngine(
            store,
            router,
            catalog,
            default_model=settings.default_model,
            system_prompt=settings.system_prompt or None,
            clock=clock,
            personas=personas,
            moderator=moderator,
            moderation_fail_closed=settings.moderation_fail_closed,
            limits=ChatLimits(settings.chat_messages_per_minute, settings.chat_tokens_per_day),
            max_prompt_chars=settings.max_prompt_chars,
            metrics=metrics,
            images=images,
            turn_lease=settings.turn_lease_seconds,
            show_reasoning=settings.show_reasoning,
            toolbox=personas.toolbox,
            tool_rounds=settings.tool_rounds,
            approval_seconds=settings.tool_approval_seconds,
            vision_fallback=settings.vision_fallback_model,
            attachments=AttachmentReader(
                per_turn=settings.attachments_per_turn,
                max_bytes=settings.attachment_max_bytes,
                text_chars=settings.attachment_text_chars,
                transcriber=build_transcriber(settings),
                voice_seconds=settings.voice_max_seconds,
            ),
        )
        interrupted = await engine.recover()
        app = cls(
            settings,
            catalog,
            store,
            router,
            engine,
            interrupted=interrupted,
            conversations=ConversationService(
                store, clock=clock, page_size=settings.history_page_size
            ),
            personas=personas,
            usage=UsageService(store, clock=clock),
            metrics=metrics,
            moderator=moderator,
            tools=tools,
            search=search,
        )
        app.web.add_readiness_check(app._store_ready)
        app.web.enable_metrics(metrics)
        app.images = images
        app.unknown_images.extend(await app.images.recover())
        register_image_health(app.web, app.images.router)
        return app

    def watch_unknown_images(self, platform: str, notify: UnknownImagesCallback) -> None:
        """Tell `notify` about image jobs of `platform` whose outcome became unknown.

        Called by an adapter once it can post: it hears at once about the jobs found at start-up,
        then about those each periodic sweep finds (a crashed replica's jobs turn unknown only
        when their lease runs out, so that no replica declares another's live job dead).
        """
        self._image_watchers.append((platform, notify))
        jobs = [job for job in self.unknown_images if job.platform == platform]
        if jobs:
            self._spawn_notice(notify, jobs, "tell about unknown image")

    async def sweep_images(self) -> list[ImageJob]:
        """Mark abandoned image jobs unknown and tell the adapters; returns those jobs."""
        if self.images is None:
            return []
        jobs = await self.images.recover()
        for platform, notify in self._image_watchers:
            mine = [job for job in jobs if job.platform == platform]
            if mine:
                self._spawn_notice(notify, mine, "tell about unknown image")
        return jobs

    def watch_interrupted_turns(self, platform: str, finish: InterruptedTurnsCallback) -> None:
        """Hand `finish` the turns of `platform` that a dead process left streaming.

        Called by an adapter once it can edit its messages: it gets those found at start-up at
        once, then those each periodic sweep finds (a turn is taken only when its lease has run
        out, so no replica cuts off another's live reply).
        """
        self._turn_watchers.append((platform, finish))
        mine = [t for t in self.interrupted if t.conversation.platform == platform]
        self.interrupted = [t for t in self.interrupted if t.conversation.platform != platform]
        if mine:
            self._spawn_notice(finish, mine, "finish interrupted turn")

    async def sweep_turns(self) -> list[InterruptedTurn]:
        """Take over abandoned turns (their lease ran out) and hand them to the adapters."""
        turns = await self.engine.recover()
        for platform, finish in self._turn_watchers:
            mine = [t for t in turns if t.conversation.platform == platform]
            if mine:
                self._spawn_notice(finish, mine, "finish interrupted turn")
        return turns

    def _spawn_notice(
        self, notify: Callable[[Any], Coroutine[Any, Any, None]], items: list[Any], what: str
    ) -> None:
        task = asyncio.create_task(_each(notify, items, what), name="platform-notice")
        self._notices.add(task)
        task.add_done_callback(self._notice_done)

    def _notice_done(self, task: asyncio.Task[None]) -> None:
        self._notices.discard(task)
        if not task.cancelled() and (exc := task.exception()) is not None:
            log.error("could not tell users about abandoned work: %r", exc)

    async def _store_ready(self) -> tuple[str, bool]:
        return "store", await self.store.ping()

    async def close(self) -> None:
        await self.engine.wait_idle()
        await self.web.stop()
        await self.router.registry.aclose()
        if self.images is not None:
            await self.images.router.aclose()
        if self.moderator is not None:
            await self.moderator.aclose()
        if self.tools is not None:
            await self.tools.aclose()
        if self.search is not None:
            await self.search.aclose()
        await self.engine.attachments.aclose()
        await self.store.close()


TOOLS_START_WAIT = 10.0
"""Seconds start-up waits for the MCP servers; a slower one joins when it is connected."""


async def start_tools(
    settings: Settings, *, wait: float | None = TOOLS_START_WAIT
) -> McpServers | None:
    """Connect the configured MCP servers (None when there are none); `wait` None waits each
    server's whole connect timeout (`python -m bot tools`)."""
    if not settings.mcp_servers:
        return None
    tools = McpServers(settings.mcp_servers, allowed_commands=settings.mcp_commands)
    await tools.start(wait)
    return tools


def build_search(settings: Settings) -> WebSearch | None:
    """Web search as a tool when TAVILY_API_KEY is set."""
    if settings.tavily_api_key is None:
        return None
    return WebSearch(
        settings.tavily_api_key.get_secret_value(),
        base_url=settings.tavily_base_url,
        max_results=settings.web_search_results,
    )


IMAGE_SWEEP_SECONDS = 30.0
"""How often abandoned image jobs are looked for (their lease, not this, decides when)."""


async def _each(
    notify: Callable[[Any], Coroutine[Any, Any, None]], items: list[Any], what: str
) -> None:
    """Hand the adapter one item at a time; one it cannot deliver is logged and left, and the
    others still go (a deleted channel, a workspace that removed the app)."""
    for item in items:
        try:
            await notify(item)
        except Exception as exc:
            ident = getattr(getattr(item, "message", item), "id", "?")
            log.warning("could not %s %s: %r", what, ident, exc)


async def _sweep_forever(
    name: str, seconds: float, sweep: Callable[[], Coroutine[Any, Any, object]]
) -> None:
    while True:
        await asyncio.sleep(seconds)
        try:
            await sweep()
        except Exception as exc:  # a failed sweep is retried at the next tick, never fatal
            log.warning("%s sweep failed: %r", name, exc)


SHUTDOWN_GRACE = 30.0
"""Default of SHUTDOWN_GRACE_SECONDS: how long running replies get to finish after SIGTERM."""
_CUT_OFF_WAIT = 10.0  # seconds for cut-off replies to store themselves as interrupted


async def serve(app: App, platforms: list[str]) -> None:
    """Run the named adapters (and the web server when PORT is set) until one ends or SIGTERM."""
    adapters = [load_adapter(name)(app) for name in platforms]
    if app.settings.port is not None:
        await app.web.start(app.settings.host, app.settings.port)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)  # the console takes SIGINT over for Stop
    tasks = [asyncio.create_task(a.run(stop), name=f"adapter-{a.name}") for a in adapters]
    stopper = asyncio.create_task(stop.wait())
    sweepers = [
        asyncio.create_task(
            _sweep_forever("image", IMAGE_SWEEP_SECONDS, app.sweep_images), name="image-sweeper"
        ),
        # Half a lease: a dead replica's replies are finished within 1.5 leases of its death.
        asyncio.create_task(
            _sweep_forever("turn", app.settings.turn_lease_seconds / 2, app.sweep_turns),
            name="turn-sweeper",
        ),
    ]
    try:
        await asyncio.wait([*tasks, stopper], return_when=asyncio.FIRST_COMPLETED)
        stop.set()
        app.engine.stop_accepting()
        grace = app.settings.shutdown_grace_seconds
        log.info("shutting down: waiting up to %.1fs for running replies", grace)
        try:
            await asyncio.wait_for(app.engine.wait_idle(), grace)
        except TimeoutError:
            cut = app.engine.interrupt_running()
            log.warning("grace period over: %d running replies are cut off", cut)
            try:
                await asyncio.wait_for(app.engine.wait_idle(), _CUT_OFF_WAIT)
            except TimeoutError:
                log.error("replies did not stop after the grace period")
        results = await asyncio.gather(*tasks, return_exceptions=True)
        for adapter, result in zip(adapters, results, strict=True):
            if isinstance(result, BaseException) and not isinstance(result, asyncio.CancelledError):
                log.error("adapter %s failed: %r", adapter.name, result)
    finally:
        stopper.cancel()
        for sweeper in sweepers:
            sweeper.cancel()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(signum)
