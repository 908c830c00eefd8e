"""ImageEngine: quote (nothing spent), then confirm (claimed once, within limits, then generated).

    quote = await engine.quote(ImageRequest(key, user_id, "a red fox"))   # ImageRejected if bad
    outcome = await engine.confirm(quote.id, Actor.at(key, user_id))      # or choice=<alt index>
    match outcome.kind: "generated" -> outcome.image; "reconfirm" -> outcome.quote; else message

A quote is a row in `image_jobs`, in the tenant of the conversation or command it came from;
confirming claims it atomically (`quoted -> generating`, for the requester only, limits counted in
the same transaction), so double clicks, racing clicks and other replicas get a reason instead of a
second generation. Whoever acts on a quote or job is an Actor (platform, tenant, user): one of
another platform or tenant is answered as if the quote did not exist, so nothing there is created,
spent or revealed. A job whose outcome is lost is `unknown` and never retried.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from typing import Literal

from bot.clock import SYSTEM_CLOCK, Clock
from bot.domain import Actor, ConversationKey
from bot.errors import UserError
from bot.images.catalog import IMAGE_PROVIDERS, SIZES, TIERS, ImageCatalog, ImageModel, Tier
from bot.images.limits import ImageLimits
from bot.images.providers.base import ImageCall
from bot.images.router import ImageRouter, RouteOutcome
from bot.images.tiers import choose_tier
from bot.images.views import format_usd
from bot.store import ImageAlternative, ImageJob, ImageStore, Store, tenant_id_for
from bot.text import clean_text

log = logging.getLogger("parley.images")

MAX_ALTERNATIVES = 3
LEASE_MARGIN = 60.0
"""Seconds past the job timeout before another replica may declare a `generating` job dead."""


UNKNOWN_QUOTE = "That quote no longer exists."
UNKNOWN_IMAGE = "That image is no longer known."
"""What a click on an unknown quote or job says, and one of another platform or tenant too."""


class ImageRejected(UserError):
    """The request cannot be quoted; `message` says why, for the user."""

    code = "image_rejected"


@dataclass(frozen=True, slots=True)
class ImageRequest:
    key: ConversationKey
    user_id: str
    prompt: str
    quality: str | None = None
    size: str | None = None
    provider: str | None = None
    negative: str | None = None
    seed: int | None = None
    steps: int | None = None

    def __post_init__(self) -> None:  # typed by a user, or written by a model's tool call
        object.__setattr__(self, "prompt", clean_text(self.prompt))
        if self.negative is not None:
            object.__setattr__(self, "negative", clean_text(self.negative))


@dataclass(frozen=True, slots=True)
class GeneratedImage:
    data: bytes
    mime: str
    filename: str
    provider: str
    model: str
    size: str
    cost: Decimal
    fallback_used: bool
    fallback_from: str | None

    @property
    def badges(self) -> tuple[str, ...]:
        found = [self.provider, self.model, self.size, format_usd(self.cost)]
        if self.fallback_used:
            found.append(f"fallback used (instead of {self.fallback_from})")
        return tuple(found)


OutcomeKind = Literal[
    "generated",
    "reconfirm",  # a dearer fallback was quoted: `quote` holds it
    "not_found",
    "not_yours",
    "already",  # claimed, cancelled or finished before: nothing more happens
    "expired",
    "limit",
    "refused",  # the provider refused the prompt
    "failed",  # nothing generated, nothing charged
    "unknown",  # the provider may have generated (and billed) it; not retried
    "cancelled",
]


@dataclass(frozen=True, slots=True)
class Outcome:
    kind: OutcomeKind
    message: str
    job: ImageJob | None = None
    image: GeneratedImage | None = None
    quote: ImageJob | None = None


_ALREADY = {
    "generating": "This image is already being generated.",
    "succeeded": "This image was already generated.",
    "unknown": "This image's outcome is unknown (it may have been generated); it is not retried.",
    "failed": "This quote was already used (the generation failed). Ask again for a new quote.",
    "refused": "This prompt was refused by the provider.",
    "cancelled": "This quote was cancelled.",
    "expired": "This quote has expired. Ask again for a new quote.",
    "superseded": "This quote was replaced by a new price; use the newer quote.",
}


class ImageEngine:
    def __init__(
        self,
        store: Store,
        router: ImageRouter,
        catalog: ImageCatalog,
        *,
        limits: ImageLimits | None = None,
        quote_ttl: float = 900.0,
        prompt_max_chars: int = 1000,
        job_timeout: float = 300.0,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        self._store = store
        self._jobs = ImageStore(store)
        self.router = router
        self.catalog = catalog
        self.limits = limits or ImageLimits()
        self.quote_ttl = quote_ttl
        self.prompt_max_chars = prompt_max_chars
        self.job_timeout = job_timeout
        self._clock = clock

    # -- quotes -----------------------------------------------------------------------------------

    async def quote(self, request: ImageRequest) -> ImageJob:
        """Price the request and store the quote. Nothing is charged. Raises ImageRejected."""
        prompt = request.prompt.strip()
        self._validate(request, prompt)
        tier = choose_tier(prompt, self.catalog, request.quality)
        plan = await self.router.plan(tier, request.size, request.provider, len(prompt))
        if not plan:
            raise ImageRejected("No image provider is available for this right now.")
        (primary, _), others = plan[0], plan[1 : 1 + MAX_ALTERNATIVES]
        size = request.size or primary.default_size
        alternatives = tuple(
            ImageAlternative(
                entry=m.name,
                provider=m.provider,
                model=m.model_id,
                tier=t,
                estimate=m.estimate(size if size in m.sizes else m.default_size, request.steps),
            )
            for m, t in others
            if size in m.sizes
        )
        return await self._add_quote(request.key, request.user_id, prompt, tier, size, primary,
                                     _options(request), alternatives)  # fmt: skip

    async def requote(self, job_id: str, actor: Actor) -> ImageJob:
        """Regenerate: the requester's new quote for their earlier job's prompt, in its place."""
        job = await self._jobs.get(job_id, actor)
        if job is None:
            raise ImageRejected(UNKNOWN_IMAGE)
        if job.user_id != actor.user_id:
            raise ImageRejected("Only the person who asked for this image can regenerate it.")
        options = job.options
        request = ImageRequest(
            key=ConversationKey(actor.platform, actor.tenant, job.channel_id, job.thread_id),
            user_id=actor.user_id,
            prompt=job.prompt,
            quality=job.tier,
            size=job.size,
            negative=_opt_str(options.get("negative")),
            seed=_opt_int(options.get("seed")),
            steps=_opt_int(options.get("steps")),
        )
        return await self.quote(request)

    async def cancel(self, quote_id: str, actor: Actor) -> Outcome:
        result = await self._jobs.cancel(quote_id, actor)
        if result.kind == "claimed":
            return Outcome("cancelled", "Cancelled; nothing was charged.", result.job)
        if result.kind == "not_found":
            return Outcome("not_found", UNKNOWN_QUOTE)
        if result.kind == "not_yours":
            return Outcome("not_yours", "Only the person who asked can cancel this.", result.job)
        return Outcome("already", _ALREADY.get(result.reason, "Already handled."), result.job)

    async def recent(self, key: ConversationKey, user_id: str, limit: int = 10) -> list[ImageJob]:
        return await self._jobs.recent(tenant_id_for(key), user_id, limit=limit)

    async def recover(self) -> list[ImageJob]:
        """Jobs left `generating` past their lease become `unknown` (never retried)."""
        jobs = await self._jobs.expire_stale()
        for job in jobs:
            log.warning("image job %s found generating: marked unknown", job.id)
        return jobs

    # -- confirm ----------------------------------------------------------------------------------

    async def confirm(self, quote_id: str, actor: Actor, *, choice: int | None = None) -> Outcome:
        """The requester's click: claim once, check limits, generate through the chain."""
        job = await self._jobs.get(quote_id, actor)
        if job is None:
            return Outcome("not_found", UNKNOWN_QUOTE)
        entry_name, price = job.entry, job.estimate
        if choice is not None:
            if not 0 <= choice < len(job.alternatives):
                return Outcome("not_found", "That option is not on this quote.", job)
            entry_name, price = job.alternatives[choice].entry, job.alternatives[choice].estimate
        lease = timedelta(seconds=self.job_timeout + LEASE_MARGIN)
        claim = await self._jobs.claim(
            quote_id, actor, entry=entry_name, estimate=price, lease=lease,
            check=self.limits.check,
        )  # fmt: skip
        if claim.kind == "not_found":
            return Outcome("not_found", UNKNOWN_QUOTE)
        if claim.kind == "not_yours":
            return Outcome("not_yours", "Only the person who asked for this image can confirm it.",
                           claim.job)  # fmt: skip
        if claim.kind == "expired":
            minutes = round(self.quote_ttl / 60)
            return Outcome("expired", f"This quote expired (quotes last {minutes} min). "
                           "Ask again for a new one.", claim.job)  # fmt: skip
        if claim.kind == "limit":
            return Outcome("limit", claim.reason + " Nothing was charged.", claim.job)
        if claim.kind == "taken":
            return Outcome("already", _ALREADY.get(claim.reason, "Already handled."), claim.job)
        assert claim.job is not None
        return await self._generate(claim.job, entry_name, price)

    async def _generate(self, job: ImageJob, entry_name: str, price: Decimal) -> Outcome:
        entry = self.catalog.get(entry_name)
        if entry is None:
            done = await self._jobs.finish(job.id, "failed", detail="model no longer offered")
            return Outcome("failed", "That model is no longer offered. Ask again.", done or job)
        tier = _tier(job.tier)
        chain = self.router.chain(entry, tier, job.size)
        started = self._clock.now()
        try:
            async with asyncio.timeout(self.job_timeout):
                route = await self.router.generate(chain, self._call_for(job), price)
        except TimeoutError:
            route = RouteOutcome("unknown", entry)
        duration = int((self._clock.now() - started) * 1000)
        return await self._record(job, entry, price, route, duration)

    def _call_for(self, job: ImageJob) -> _CallBuilder:
        return _CallBuilder(job)

    async def _record(
        self, job: ImageJob, confirmed: ImageModel, price: Decimal, route: RouteOutcome,
        duration_ms: int,
    ) -> Outcome:  # fmt: skip
        used = route.entry
        if route.kind == "ok" and used is not None and route.result is not None:
            result = route.result
            steps = used.steps(_opt_int(job.options.get("steps")))
            cost = result.cost if result.cost is not None else used.estimate(job.size, steps)
            fallback = used.name != confirmed.name
            done = await self._jobs.finish(
                job.id, "succeeded", used_provider=used.provider, used_model=used.model_id,
                fallback_from=confirmed.provider if fallback else None, cost=cost,
                duration_ms=duration_ms,
            )  # fmt: skip
            await self._store.record_usage(
                tenant_id=job.tenant_id, user_id=job.user_id, kind="image",
                provider=used.provider, model=used.model_id, prompt_tokens=0,
                completion_tokens=0, cost=cost,
            )  # fmt: skip
            image = GeneratedImage(
                data=result.data,
                mime=result.mime,
                filename=f"parley-{job.id}.{result.extension}",
                provider=used.provider,
                model=used.display,
                size=job.size,
                cost=cost,
                fallback_used=fallback,
                fallback_from=confirmed.display if fallback else None,
            )
            log.info("image generated job=%s provider=%s model=%s cost=%s fallback=%s ms=%d",
                     job.id, used.provider, used.model_id, cost, fallback, duration_ms)  # fmt: skip
            return Outcome("generated", "", done or job, image=image)
        detail = route.error.message if route.error is not None else None
        provider = used.provider if used is not None else None
        model = used.model_id if used is not None else None
        if route.kind == "refused":
            done = await self._jobs.finish(job.id, "refused", used_provider=provider,
                                           used_model=model, detail=detail,
                                           duration_ms=duration_ms)  # fmt: skip
            return Outcome("refused", f"The provider refused this prompt: {detail}. "
                           "Nothing was charged.", done or job)  # fmt: skip
        if route.kind == "unknown":
            done = await self._jobs.finish(job.id, "unknown", used_provider=provider,
                                           used_model=model, detail=detail,
                                           duration_ms=duration_ms)  # fmt: skip
            return Outcome("unknown", "The provider took the request but the result was lost; "
                           "it may have been charged. It will not be retried automatically.",
                           done or job)  # fmt: skip
        if route.kind == "reconfirm" and used is not None:
            new_price = used.estimate(job.size, used.steps(_opt_int(job.options.get("steps"))))
            quote = await self._add_quote(job.key, job.user_id, job.prompt, _tier(job.tier),
                                          job.size, used, job.options, ())  # fmt: skip
            done = await self._jobs.finish(job.id, "superseded", superseded_by=quote.id,
                                           detail="a dearer fallback needs a new confirmation",
                                           duration_ms=duration_ms)  # fmt: skip
            return Outcome("reconfirm", f"{confirmed.display} is unavailable; the next option, "
                           f"{used.display}, costs {format_usd(new_price)} (you confirmed "
                           f"{format_usd(price)}). Confirm the new price to go ahead.",
                           done or job, quote=quote)  # fmt: skip
        done = await self._jobs.finish(job.id, "failed", detail=detail, duration_ms=duration_ms)
        why = f" ({detail})" if detail else ""
        return Outcome("failed", f"No image provider could make this image right now{why}. "
                       "Nothing was charged.", done or job)  # fmt: skip

    async def _add_quote(
        self, key: ConversationKey, user_id: str, prompt: str, tier: Tier, size: str,
        model: ImageModel, options: dict[str, object], alternatives: tuple[ImageAlternative, ...],
    ) -> ImageJob:  # fmt: skip
        now = self._clock.wall()
        job = ImageJob(
            id=secrets.token_hex(8),
            tenant_id=tenant_id_for(key),
            platform=key.platform,
            channel_id=key.channel,
            thread_id=key.thread,
            user_id=user_id,
            prompt=prompt,
            options=options,
            tier=tier,
            size=size,
            entry=model.name,
            provider=model.provider,
            model=model.model_id,
            estimate=model.estimate(size, model.steps(_opt_int(options.get("steps")))),
            alternatives=alternatives,
            status="quoted",
            created_at=now,
            expires_at=now + timedelta(seconds=self.quote_ttl),
        )
        return await self._jobs.add_quote(job)

    def _validate(self, request: ImageRequest, prompt: str) -> None:
        if not prompt:
            raise ImageRejected("The prompt is empty: describe the image you want.")
        if len(prompt) > self.prompt_max_chars:
            raise ImageRejected(
                f"The prompt is too long ({len(prompt)} characters; the limit is "
                f"{self.prompt_max_chars})."
            )
        if request.negative and len(request.negative) > self.prompt_max_chars:
            raise ImageRejected("The negative prompt is too long.")
        if request.quality is not None and request.quality.strip().lower() not in TIERS:
            raise ImageRejected(f"Unknown quality {request.quality!r}: use {', '.join(TIERS)}.")
        if request.size is not None and request.size not in SIZES:
            raise ImageRejected(f"Unknown size {request.size!r}: use {', '.join(SIZES)}.")
        if request.provider is not None and request.provider not in IMAGE_PROVIDERS:
            raise ImageRejected(
                f"Unknown provider {request.provider!r}: use {', '.join(IMAGE_PROVIDERS)}."
            )
        if request.seed is not None and not 0 <= request.seed < 2**32:
            raise ImageRejected("The seed must be between 0 and 4294967295.")
        if request.steps is not None and not 1 <= request.steps <= 100:
            raise ImageRejected("Steps must be between 1 and 100.")


class _CallBuilder:
    """The provider call for one job on one catalog entry (steps capped per model)."""

    def __init__(self, job: ImageJob) -> None:
        self._job = job

    def __call__(self, model: ImageModel) -> ImageCall:
        options = self._job.options
        return ImageCall(
            model_id=model.model_id,
            prompt=self._job.prompt,
            size=self._job.size,
            negative=_opt_str(options.get("negative")),
            seed=_opt_int(options.get("seed")),
            steps=model.steps(_opt_int(options.get("steps"))),
            params=model.params,
        )


def _options(request: ImageRequest) -> dict[str, object]:
    found: dict[str, object] = {}
    if request.negative:
        found["negative"] = request.negative.strip()
    if request.seed is not None:
        found["seed"] = request.seed
    if request.steps is not None:
        found["steps"] = request.steps
    return found


def _opt_int(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _opt_str(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


def _tier(name: str) -> Tier:
    return next((t for t in TIERS if t == name), "standard")
