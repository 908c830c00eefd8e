"""Images: cost-confirmed generation through a fallback chain of providers with shared breakers.

Adapters use: `build_image_engine` (from App), `flow.offer_quote` / `flow.handle_click` /
`views.history_text`, the `ImageSurface` port (bot/ports.py), and `tools.GENERATE_IMAGE_TOOL`.
"""

from __future__ import annotations

from bot.clock import SYSTEM_CLOCK, Clock
from bot.config import Settings
from bot.images.catalog import ImageCatalog
from bot.images.engine import (
    GeneratedImage,
    ImageEngine,
    ImageRejected,
    ImageRequest,
    Outcome,
)
from bot.images.limits import ImageLimits
from bot.images.router import ImageRouter
from bot.resilience.breaker import BreakerPolicy
from bot.resilience.shared_breaker import SharedBreakerBoard
from bot.store import BreakerStore, Store

__all__ = [
    "GeneratedImage",
    "ImageCatalog",
    "ImageEngine",
    "ImageLimits",
    "ImageRejected",
    "ImageRequest",
    "ImageRouter",
    "Outcome",
    "build_image_engine",
]


def build_image_engine(
    settings: Settings, store: Store, *, clock: Clock = SYSTEM_CLOCK
) -> ImageEngine:
    """The engine with its providers, store-backed breakers and limits, from settings."""
    catalog = ImageCatalog.load()
    policy = BreakerPolicy(
        failure_threshold=settings.circuit_breaker_failure_threshold,
        failure_window=settings.circuit_breaker_failure_window_ms / 1000,
        open_timeout=settings.circuit_breaker_timeout_ms / 1000,
        success_threshold=settings.circuit_breaker_success_threshold,
        probe_lease=float(settings.image_job_timeout_seconds),
    )
    breakers = SharedBreakerBoard(BreakerStore(store), policy, clock=clock)
    router = ImageRouter.from_settings(settings, catalog, breakers, clock=clock)
    return ImageEngine(
        store,
        router,
        catalog,
        limits=ImageLimits.from_settings(settings),
        quote_ttl=float(settings.image_quote_ttl_seconds),
        prompt_max_chars=settings.image_prompt_max_chars,
        job_timeout=float(settings.image_job_timeout_seconds),
        clock=clock,
    )
