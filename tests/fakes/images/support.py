"""Helpers for image tests: a jumping clock, providers wired to the fake, an ImageSurface fake."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from bot.images.catalog import ImageCatalog
from bot.images.engine import ImageEngine
from bot.images.limits import ImageLimits
from bot.images.providers.base import ImageProvider
from bot.images.providers.imagen import ImagenImages
from bot.images.providers.openai import OpenAIImages
from bot.images.providers.replicate import ReplicateImages
from bot.images.providers.together import TogetherImages
from bot.images.providers.workers_ai import WorkersAIImages
from bot.images.router import ImageRouter
from bot.ports import ImageUpload, MessageRef, QuoteOffer
from bot.resilience.breaker import BreakerPolicy
from bot.resilience.shared_breaker import SharedBreakerBoard
from bot.store import BreakerStore, Store
from tests.fakes.images.server import ACCOUNT, PROVIDERS, ImageFake

START = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)


class JumpClock:
    """Virtual time shared by the store, the breakers and Replicate's polling; sleep jumps."""

    def __init__(self, start: datetime = START) -> None:
        self._wall = start
        self._mono = 0.0

    def now(self) -> float:
        return self._mono

    def wall(self) -> datetime:
        return self._wall

    async def sleep(self, seconds: float) -> None:
        self.advance(seconds)

    def advance(self, seconds: float) -> None:
        self._mono += seconds
        self._wall += timedelta(seconds=seconds)


def providers_for(
    fake: ImageFake, clock: JumpClock, only: tuple[str, ...] = PROVIDERS
) -> dict[str, ImageProvider]:
    k, b = fake.keys, fake.base
    built: dict[str, ImageProvider] = {
        "openai": OpenAIImages(k["openai"], base_url=b("openai")),
        "together": TogetherImages(k["together"], base_url=b("together")),
        "replicate": ReplicateImages(k["replicate"], base_url=b("replicate"), clock=clock),
        "workers-ai": WorkersAIImages(ACCOUNT, k["workers-ai"], api_base_url=b("workers-ai")),
        "google": ImagenImages(k["google"], base_url=b("google")),
    }
    return {name: p for name, p in built.items() if name in only}


POLICY = BreakerPolicy(
    failure_threshold=5, failure_window=600, open_timeout=600, success_threshold=1, probe_lease=300
)


def make_engine(
    store: Store,
    fake: ImageFake,
    clock: JumpClock,
    *,
    only: tuple[str, ...] = PROVIDERS,
    limits: ImageLimits | None = None,
    disabled: tuple[str, ...] = (),
) -> ImageEngine:
    catalog = ImageCatalog.load()
    breakers = SharedBreakerBoard(BreakerStore(store), POLICY, clock=clock)
    router = ImageRouter(
        catalog,
        providers_for(fake, clock, only),
        breakers,
        enabled=lambda name: name not in disabled,
        clock=clock,
    )
    return ImageEngine(
        store,
        router,
        catalog,
        limits=limits or ImageLimits(100, 1000, Decimal(1000), Decimal(10000)),
        clock=clock,
    )


class MemoryImageSurface:
    """Records offers, uploads and notices, as an adapter's surface would show them."""

    def __init__(self) -> None:
        self.offers: list[QuoteOffer] = []
        self.uploads: list[ImageUpload] = []
        self.notices: list[str] = []

    async def offer(self, offer: QuoteOffer) -> MessageRef:
        self.offers.append(offer)
        return MessageRef(f"offer-{len(self.offers)}")

    async def upload(self, image: ImageUpload) -> MessageRef:
        self.uploads.append(image)
        return MessageRef(f"upload-{len(self.uploads)}")

    async def notify(self, text: str) -> None:
        self.notices.append(text)
