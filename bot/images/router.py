"""Which provider makes an image: availability, tier-preserving fallback, breakers, price ceiling.

A provider is available when its key is set, ENABLE_IMAGE_GENERATION_<PROVIDER> is not false, and
its (shared) breaker is not open. At click time the confirmed entry goes first, then the rest of its
tier in catalog order; an entry dearer than the confirmed price is never called: if nothing at or
below it worked, the result asks for a new confirmation at the dearer price.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Literal

from bot.clock import SYSTEM_CLOCK, Clock
from bot.config import Settings
from bot.images.catalog import IMAGE_PROVIDERS, ImageCatalog, ImageModel, Tier
from bot.images.providers.base import (
    ContentRefused,
    ImageCall,
    ImageProvider,
    ImageResult,
    UnknownOutcome,
)
from bot.llm.types import ProviderError
from bot.resilience.breaker import BreakerState
from bot.resilience.shared_breaker import SharedBreakerBoard

log = logging.getLogger("parley.images")


@dataclass(frozen=True, slots=True)
class Availability:
    provider: str
    available: bool
    reason: str
    breaker: BreakerState
    checked_at: datetime


@dataclass(frozen=True, slots=True)
class Attempt:
    entry: str
    provider: str
    result: str  # "skipped: <why>" | "failed: <error>" | "ok" | ...


RouteKind = Literal["ok", "refused", "unknown", "failed", "reconfirm"]


@dataclass(frozen=True, slots=True)
class RouteOutcome:
    kind: RouteKind
    entry: ImageModel | None = None
    """ok: the entry used; reconfirm: the dearer entry to offer; refused/unknown: the one tried."""
    result: ImageResult | None = None
    error: ProviderError | None = None
    attempts: tuple[Attempt, ...] = field(default_factory=tuple)


class ImageRouter:
    def __init__(
        self,
        catalog: ImageCatalog,
        providers: Mapping[str, ImageProvider],
        breakers: SharedBreakerBoard,
        *,
        missing: Mapping[str, str] | None = None,
        enabled: Callable[[str], bool] = lambda _name: True,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        self.catalog = catalog
        self.providers = dict(providers)
        self.breakers = breakers
        self._missing = dict(missing or {})
        self._enabled = enabled
        self._clock = clock

    @classmethod
    def from_settings(
        cls,
        settings: Settings,
        catalog: ImageCatalog,
        breakers: SharedBreakerBoard,
        *,
        clock: Clock = SYSTEM_CLOCK,
    ) -> ImageRouter:
        providers, missing = build_providers(settings, clock=clock)
        return cls(
            catalog,
            providers,
            breakers,
            missing=missing,
            enabled=settings.image_generation_enabled,
            clock=clock,
        )

    async def aclose(self) -> None:
        for provider in self.providers.values():
            await provider.aclose()

    # -- availability -----------------------------------------------------------------------------

    async def availability(self, provider: str) -> Availability:
        now = self._clock.wall()
        if provider not in self.providers:
            reason = self._missing.get(provider, "not configured")
            return Availability(provider, False, reason, BreakerState.CLOSED, now)
        flag = "ENABLE_IMAGE_GENERATION_" + provider.upper().replace("-", "_")
        state = await self.breakers.get(provider).state()
        if not self._enabled(provider):
            return Availability(provider, False, f"disabled by {flag}=false", state, now)
        if state is BreakerState.OPEN:
            return Availability(provider, False, "circuit breaker open", state, now)
        return Availability(provider, True, "", state, now)

    async def all_availability(self) -> list[Availability]:
        return [await self.availability(name) for name in IMAGE_PROVIDERS]

    # -- quoting ----------------------------------------------------------------------------------

    async def plan(
        self, tier: Tier, size: str | None, provider: str | None, prompt_chars: int
    ) -> list[tuple[ImageModel, Tier]]:
        """Available entries to offer, best first: the tier's (preferred provider first), then the
        first available entry of each other tier. Empty when nothing can make this image."""

        def fits(model: ImageModel) -> bool:
            return (size is None or size in model.sizes) and prompt_chars <= model.max_prompt

        ordered: list[tuple[ImageModel, Tier]] = [(m, tier) for m in self.catalog.tiers[tier]]
        if provider is not None:
            mine = [(m, tier) for m, _ in ordered if m.provider == provider]
            if not mine:  # the provider has nothing in this tier: its entries from other tiers
                mine = [
                    (m, t) for t, models in self.catalog.tiers.items() for m in models
                    if m.provider == provider
                ]  # fmt: skip
            ordered = mine + [pair for pair in ordered if pair not in mine]
        cache: dict[str, bool] = {}

        async def usable(model: ImageModel) -> bool:
            if model.provider not in cache:
                cache[model.provider] = (await self.availability(model.provider)).available
            return cache[model.provider] and fits(model)

        result = [(m, t) for m, t in ordered if await usable(m)]
        seen = {m.name for m, _ in result}
        for other, models in self.catalog.tiers.items():
            if other == tier:
                continue
            for model in models:
                if model.name not in seen and await usable(model):
                    result.append((model, other))
                    seen.add(model.name)
                    break
        return result

    def chain(self, entry: ImageModel, tier: Tier, size: str) -> list[ImageModel]:
        """The confirmed entry, then its tier's other entries that can make this size."""
        tier_models = self.catalog.tiers[tier]
        if entry not in tier_models:
            tiers = self.catalog.tiers_of(entry)
            tier_models = self.catalog.tiers[tiers[0]] if tiers else ()
        rest = [m for m in tier_models if m != entry and size in m.sizes]
        return [entry, *rest]

    # -- generating -------------------------------------------------------------------------------

    async def generate(
        self, chain: Sequence[ImageModel], call: Callable[[ImageModel], ImageCall], ceiling: Decimal
    ) -> RouteOutcome:
        """Walk the chain; never call an entry dearer than `ceiling`; never retry an unknown."""
        attempts: list[Attempt] = []
        dearer: list[ImageModel] = []
        last_error: ProviderError | None = None
        for entry in chain:
            request = call(entry)
            if entry.estimate(request.size, request.steps) > ceiling:
                dearer.append(entry)
                continue
            available = await self.availability(entry.provider)
            if not available.available:
                attempts.append(Attempt(entry.name, entry.provider, f"skipped: {available.reason}"))
                continue
            breaker = self.breakers.get(entry.provider)
            if not await breaker.try_acquire():
                attempts.append(Attempt(entry.name, entry.provider, "skipped: probe in flight"))
                continue
            provider = self.providers[entry.provider]
            try:
                result = await provider.generate(request)
            except ContentRefused as exc:
                await breaker.record_neutral()
                attempts.append(Attempt(entry.name, entry.provider, "refused"))
                return RouteOutcome("refused", entry, error=exc, attempts=tuple(attempts))
            except UnknownOutcome as exc:
                await breaker.record_failure(exc.error_class, detail=exc.message)
                attempts.append(Attempt(entry.name, entry.provider, "unknown"))
                log.warning("image outcome unknown provider=%s model=%s: %s",
                            entry.provider, entry.model_id, exc.message)  # fmt: skip
                return RouteOutcome("unknown", entry, error=exc, attempts=tuple(attempts))
            except ProviderError as exc:
                await breaker.record_failure(
                    exc.error_class,
                    detail=exc.message,
                    retry_after=exc.retry_after,
                    reset_at=exc.reset_at,
                )
                last_error = exc
                attempts.append(Attempt(entry.name, entry.provider, f"failed: {exc}"))
                log.warning(
                    "image provider failed provider=%s class=%s: %s",
                    entry.provider,
                    exc.error_class,
                    exc.message,
                )
                continue
            except BaseException:
                await breaker.record_neutral()  # cancelled: says nothing about the provider
                raise
            await breaker.record_success()
            attempts.append(Attempt(entry.name, entry.provider, "ok"))
            return RouteOutcome("ok", entry, result=result, attempts=tuple(attempts))
        for entry in dearer:
            if (await self.availability(entry.provider)).available:
                return RouteOutcome("reconfirm", entry, error=last_error, attempts=tuple(attempts))
        return RouteOutcome("failed", None, error=last_error, attempts=tuple(attempts))


def build_providers(
    settings: Settings, *, clock: Clock = SYSTEM_CLOCK
) -> tuple[dict[str, ImageProvider], dict[str, str]]:
    """One provider (one httpx client) per configured image API, and why the others are off."""
    from bot.images.providers.imagen import ImagenImages
    from bot.images.providers.openai import OpenAIImages
    from bot.images.providers.replicate import ReplicateImages
    from bot.images.providers.together import TogetherImages
    from bot.images.providers.workers_ai import WorkersAIImages

    s = settings
    providers: dict[str, ImageProvider] = {}
    missing: dict[str, str] = {}
    if s.openai_api_key:
        key = s.openai_api_key.get_secret_value()
        providers["openai"] = OpenAIImages(key, base_url=s.openai_base_url)
    else:
        missing["openai"] = "OPENAI_API_KEY is not set"
    if s.together_api_key:
        key = s.together_api_key.get_secret_value()
        providers["together"] = TogetherImages(key, base_url=s.together_base_url)
    else:
        missing["together"] = "TOGETHER_API_KEY is not set"
    if s.replicate_api_token:
        token = s.replicate_api_token.get_secret_value()
        providers["replicate"] = ReplicateImages(token, base_url=s.replicate_base_url, clock=clock)
    else:
        missing["replicate"] = "REPLICATE_API_TOKEN is not set"
    if s.cloudflare_account_id and s.cloudflare_api_token:
        providers["workers-ai"] = WorkersAIImages(
            s.cloudflare_account_id,
            s.cloudflare_api_token.get_secret_value(),
            api_base_url=s.cloudflare_api_base_url,
        )
    else:
        missing["workers-ai"] = "CLOUDFLARE_ACCOUNT_ID and CLOUDFLARE_API_TOKEN are not both set"
    if s.google_api_key:
        key = s.google_api_key.get_secret_value()
        providers["google"] = ImagenImages(key, base_url=s.google_base_url)
    else:
        missing["google"] = "GOOGLE_API_KEY is not set"
    return providers, missing
