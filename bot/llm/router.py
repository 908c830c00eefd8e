"""Ordered fallback across a model's chain, breaker-aware, only before the first visible token.

This is the one retry layer: providers never retry. A transient failure is retried once when the
provider asked for a short wait (Retry-After within the budget) or when no fallback is left;
otherwise the next model in the chain is tried at once. After visible text has reached the user, a
failure is re-raised with `after_output=True` so the engine keeps the partial text and says so;
the router never splices two providers' answers together.
"""

from __future__ import annotations

import logging
import random
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field

from bot.catalog import Catalog, ModelEntry
from bot.clock import SYSTEM_CLOCK, Clock
from bot.llm.registry import ProviderRegistry
from bot.llm.types import (
    ChatCall,
    ChatChunk,
    ErrorClass,
    LocalCongestion,
    Message,
    ProviderError,
    ToolSpec,
    TransientError,
    without_images,
)
from bot.resilience.breaker import BreakerBoard

log = logging.getLogger("parley.router")


class NoProviderAvailable(ProviderError):
    """Every model in the chain was skipped or failed before any output."""

    error_class = ErrorClass.TRANSIENT


@dataclass(slots=True)
class Attempt:
    model: str
    provider: str
    outcome: str  # "ok", "skipped: ...", or the error


@dataclass(slots=True)
class RoutedStream:
    """The chunks of one reply, plus which model and provider produced them."""

    entry: ModelEntry | None = None
    attempts: list[Attempt] = field(default_factory=list)
    _chunks: AsyncIterator[ChatChunk] | None = None

    @property
    def provider(self) -> str | None:
        return self.entry.provider if self.entry else None

    @property
    def fallback_used(self) -> bool:
        return any(a.outcome != "ok" for a in self.attempts) and self.entry is not None

    def __aiter__(self) -> AsyncIterator[ChatChunk]:
        assert self._chunks is not None
        return self._chunks


class LLMRouter:
    def __init__(
        self,
        registry: ProviderRegistry,
        catalog: Catalog,
        breakers: BreakerBoard,
        *,
        clock: Clock = SYSTEM_CLOCK,
        retry_budget: float = 5.0,
    ) -> None:
        self.registry = registry
        self.catalog = catalog
        self.breakers = breakers
        self._clock = clock
        self._retry_budget = retry_budget

    def unconfigured(self, entry: ModelEntry) -> str | None:
        """Why no provider of `entry`'s chain can answer (a key missing), or None if one can."""
        if any(self.registry.get(model.provider) for model in self.catalog.chain(entry)):
            return None
        status = self.registry.status(entry.provider)
        hint = status.reason if status else f"configure {entry.provider}"
        return f"No provider is configured for {entry.name}: {hint} (see .env.example)."

    def stream(
        self,
        entry: ModelEntry,
        messages: Sequence[Message],
        *,
        max_tokens: int | None = None,
        temperature: float | None = None,
        top_p: float | None = None,
        tools: tuple[ToolSpec, ...] = (),
        fallback: bool = True,
    ) -> RoutedStream:
        """Stream from the first model in `entry`'s chain that answers (`fallback=False`: from
        `entry` only, as a turn's later tool rounds do: no model change mid-turn).

        `tools` go only to models whose catalog entry has the tools capability.
        """
        routed = RoutedStream()
        routed._chunks = self._run(
            routed, entry, messages, max_tokens, _Sampling(temperature, top_p, tools), fallback
        )
        return routed

    async def _run(
        self,
        routed: RoutedStream,
        entry: ModelEntry,
        messages: Sequence[Message],
        max_tokens: int | None,
        sampling: _Sampling,
        fallback: bool = True,
    ) -> AsyncIterator[ChatChunk]:
        chain = self.catalog.chain(entry) if fallback else [entry]
        last_error: ProviderError | None = None
        for index, candidate in enumerate(chain):
            provider = self.registry.get(candidate.provider)
            if provider is None:
                status = self.registry.status(candidate.provider)
                reason = status.reason if status else "unknown provider"
                routed.attempts.append(
                    Attempt(candidate.name, candidate.provider, f"skipped: {reason}")
                )
                continue
            breaker = self.breakers.get(candidate.provider)
            tokens = min(max_tokens or candidate.default_max_tokens, candidate.max_output_tokens)
            call = ChatCall(
                candidate.model_id,
                messages if candidate.capabilities.vision else without_images(messages),
                tokens,
                sampling.temperature,
                top_p=sampling.top_p,
                tools=sampling.tools if candidate.capabilities.tools else (),
                thinks_inline=candidate.thinks_inline,
            )
            retried = False
            while True:
                if not breaker.try_acquire():
                    routed.attempts.append(
                        Attempt(candidate.name, candidate.provider, "skipped: circuit open")
                    )
                    break
                visible = False
                try:
                    chunks = provider.stream(call)
                    try:
                        async for chunk in chunks:
                            if chunk.text and not visible:
                                visible = True
                                routed.entry = candidate
                                routed.attempts.append(
                                    Attempt(candidate.name, candidate.provider, "ok")
                                )
                            yield chunk
                    finally:
                        await _aclose(chunks)
                except ProviderError as exc:
                    exc.provider = exc.provider or candidate.provider
                    if isinstance(exc, LocalCongestion):
                        breaker.record_neutral()  # our pool was full: the provider did nothing
                    else:
                        breaker.record_failure(
                            exc.error_class,
                            detail=exc.message,
                            retry_after=exc.retry_after,
                            reset_at=exc.reset_at,
                        )
                    if visible or exc.after_output:
                        exc.after_output = True
                        log.warning(
                            "stream failed after output model=%s provider=%s error=%s",
                            candidate.name,
                            candidate.provider,
                            exc,
                        )
                        raise
                    log.warning(
                        "attempt failed model=%s provider=%s class=%s error=%s",
                        candidate.name,
                        candidate.provider,
                        exc.error_class.value,
                        exc,
                    )
                    last_error = exc
                    if not retried and self._should_retry(exc, last=index == len(chain) - 1):
                        retried = True
                        await self._clock.sleep(self._retry_delay(exc))
                        continue
                    routed.attempts.append(Attempt(candidate.name, candidate.provider, str(exc)))
                    break
                except BaseException:
                    breaker.record_neutral()  # cancelled (Stop) or closed by the consumer
                    raise
                else:
                    breaker.record_success()
                    if not visible:  # an empty but clean answer still counts as this model's
                        routed.entry = candidate
                        routed.attempts.append(Attempt(candidate.name, candidate.provider, "ok"))
                    return
        raise NoProviderAvailable(_summary(entry, routed.attempts, last_error))

    def _should_retry(self, exc: ProviderError, *, last: bool) -> bool:
        if not isinstance(exc, TransientError):
            return False
        if exc.retry_after is not None:
            return exc.retry_after <= self._retry_budget
        return last  # nothing left to fall back to: one jittered retry is the only hope

    def _retry_delay(self, exc: ProviderError) -> float:
        if exc.retry_after is not None:
            return exc.retry_after
        return 0.25 + random.random() * 0.5


@dataclass(frozen=True, slots=True)
class _Sampling:
    temperature: float | None
    top_p: float | None
    tools: tuple[ToolSpec, ...]


def _summary(entry: ModelEntry, attempts: list[Attempt], last: ProviderError | None) -> str:
    if not attempts:
        return f"no provider is configured for {entry.display}"
    tried = "; ".join(f"{a.model} ({a.provider}): {a.outcome}" for a in attempts)
    if last is None:
        return f"no provider available for {entry.display}: {tried}"
    return f"every provider failed for {entry.display}: {tried}"


async def _aclose(chunks: AsyncIterator[ChatChunk]) -> None:
    """Close a provider's generator now, so its HTTP response is released at once."""
    aclose = getattr(chunks, "aclose", None)
    if aclose is not None:
        await aclose()
