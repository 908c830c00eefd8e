"""Composition root: Settings -> catalog, store, providers, router, engine."""

from __future__ import annotations

from dataclasses import dataclass

from bot.catalog import Catalog, UnknownModel
from bot.clock import SYSTEM_CLOCK, Clock
from bot.config import ConfigurationError, Settings
from bot.engine.chat import ChatEngine
from bot.llm.registry import ProviderRegistry
from bot.llm.router import LLMRouter
from bot.resilience.breaker import BreakerBoard, BreakerPolicy
from bot.store import Store


def build_catalog(settings: Settings) -> Catalog:
    try:
        catalog = Catalog.load(settings.models)
        catalog.resolve(settings.default_model)
    except UnknownModel as exc:
        name = "DEFAULT_MODEL" if "unknown model" in str(exc) else "BOT_CONFIG"
        raise ConfigurationError(f"{name}: {exc}") from None
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


async def open_store(url: str, *, migrate: bool = True) -> Store:
    try:
        return await Store.open(url, migrate=migrate)
    except Exception as exc:  # any driver or URL problem becomes one line naming the setting
        detail = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ConfigurationError(f"DATABASE_URL: cannot open the database: {detail}") from None


@dataclass(slots=True)
class App:
    settings: Settings
    catalog: Catalog
    store: Store
    router: LLMRouter
    engine: ChatEngine

    @classmethod
    async def build(cls, settings: Settings, *, clock: Clock = SYSTEM_CLOCK) -> App:
        catalog = build_catalog(settings)
        router = build_router(settings, catalog, clock=clock)
        store = await open_store(settings.database_url)
        engine = ChatEngine(
            store,
            router,
            catalog,
            default_model=settings.default_model,
            system_prompt=settings.system_prompt or None,
            clock=clock,
        )
        await engine.recover()
        return cls(settings, catalog, store, router, engine)

    async def close(self) -> None:
        await self.engine.wait_idle()
        await self.router.registry.aclose()
        await self.store.close()
