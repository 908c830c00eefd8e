"""The router against the real providers over HTTP: retries, fallback, breakers."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import pytest_asyncio

from bot.app import build_catalog, build_router
from bot.llm.router import LLMRouter, NoProviderAvailable, RoutedStream
from bot.llm.types import ChatChunk, FinishReason, Message, ProviderError, StreamTruncated
from bot.resilience.breaker import BreakerState
from tests.fakes.clock import FakeClock
from tests.fakes.llm_server import (
    LLMFake,
    anthropic_stream,
    llm_fake,
    openai_error,
    openai_stream,
    workers_error,
    workers_stream,
)
from tests.support import settings_for

__all__ = ["llm_fake"]

PROMPT = [Message("user", "hi")]


@pytest_asyncio.fixture
async def clock() -> FakeClock:
    return FakeClock()


@pytest_asyncio.fixture
async def router(llm_fake: LLMFake, clock: FakeClock) -> AsyncIterator[LLMRouter]:
    settings = settings_for(llm_fake)
    router = build_router(settings, build_catalog(settings), clock=clock)
    yield router
    await router.registry.aclose()


async def collect(
    router: LLMRouter, clock: FakeClock, model: str = "llama-3.1-8b"
) -> tuple[RoutedStream, list[ChatChunk]]:
    routed = router.stream(router.catalog.resolve(model), PROMPT)

    async def run() -> list[ChatChunk]:
        return [chunk async for chunk in routed]

    return routed, await clock.drive(run())


def text_of(chunks: list[ChatChunk]) -> str:
    return "".join(c.text for c in chunks)


async def test_first_choice_answers_when_healthy(
    router: LLMRouter, llm_fake: LLMFake, clock
) -> None:  # type: ignore[no-untyped-def]
    llm_fake.queue("workers", workers_stream(["Hel", "lo"], usage=(7, 2)))
    routed, chunks = await collect(router, clock)
    assert text_of(chunks) == "Hello"
    assert chunks[-1].finish_reason is FinishReason.STOP
    assert routed.provider == "workers-ai" and not routed.fallback_used
    assert llm_fake.calls_to("workers")[0].body["max_tokens"] == 1024


async def test_capacity_error_before_first_token_falls_back_at_once(
    router, llm_fake, clock
) -> None:  # type: ignore[no-untyped-def]
    llm_fake.queue("workers", workers_error(3040))
    llm_fake.queue("openai", openai_stream(["from ", "openai"]))
    routed, chunks = await collect(router, clock)
    assert text_of(chunks) == "from openai"
    assert routed.provider == "openai" and routed.fallback_used
    assert len(llm_fake.calls_to("workers")) == 1  # no retry: a fallback was available
    assert clock.now() == 0  # and no waiting
    assert router.breakers.get("workers-ai").snapshot().failures_in_window == 1


async def test_no_fallback_after_the_first_visible_token(router, llm_fake, clock) -> None:  # type: ignore[no-untyped-def]
    llm_fake.queue(
        "workers", workers_stream(["partial ", "answer"], done=False, usage=None).dropped()
    )
    routed = router.stream(router.catalog.resolve("llama-3.1-8b"), PROMPT)
    seen: list[str] = []
    with pytest.raises(StreamTruncated) as info:
        async for chunk in routed:
            seen.append(chunk.text)
    assert "".join(seen) == "partial answer"
    assert info.value.after_output
    assert llm_fake.calls_to("openai") == []
    assert llm_fake.calls_to("anthropic") == []


async def test_rate_limit_with_short_retry_after_is_retried_on_the_same_provider(
    router, llm_fake, clock
) -> None:  # type: ignore[no-untyped-def]
    llm_fake.queue(
        "openai", openai_error(429, "requests", "rate_limit_exceeded", "slow", retry_after=2)
    )
    llm_fake.queue("openai", openai_stream(["ok"]))
    routed, chunks = await collect(router, clock, "gpt-4o-mini")
    assert text_of(chunks) == "ok"
    assert routed.provider == "openai"
    assert len(llm_fake.calls_to("openai")) == 2
    assert clock.now() == pytest.approx(2.0)  # waited exactly as told
    assert llm_fake.calls_to("anthropic") == []


async def test_retry_after_beyond_the_budget_falls_back_instead(router, llm_fake, clock) -> None:  # type: ignore[no-untyped-def]
    llm_fake.queue(
        "openai", openai_error(429, "requests", "rate_limit_exceeded", "slow", retry_after=60)
    )
    llm_fake.queue("anthropic", anthropic_stream(["claude"]))
    routed, chunks = await collect(router, clock, "gpt-4o-mini")
    assert text_of(chunks) == "claude"
    assert routed.provider == "anthropic"
    assert len(llm_fake.calls_to("openai")) == 1 and clock.now() == 0


async def test_quota_exhausted_is_never_retried_and_keeps_the_breaker_open(
    router, llm_fake, clock
) -> None:  # type: ignore[no-untyped-def]
    llm_fake.queue("workers", workers_error(3036))
    llm_fake.queue("openai", openai_stream(["a"]), openai_stream(["b"]))
    await collect(router, clock)
    assert router.breakers.get("workers-ai").state is BreakerState.OPEN
    routed, chunks = await collect(router, clock)  # the next turn skips Workers AI entirely
    assert text_of(chunks) == "b"
    assert len(llm_fake.calls_to("workers")) == 1
    assert routed.attempts[0].outcome == "skipped: circuit open"


async def test_openai_insufficient_quota_is_quota_not_rate_limit(router, llm_fake, clock) -> None:  # type: ignore[no-untyped-def]
    llm_fake.queue(
        "openai",
        openai_error(429, "insufficient_quota", "insufficient_quota", "pay", retry_after=1),
    )
    llm_fake.queue("anthropic", anthropic_stream(["fallback"]))
    _routed, chunks = await collect(router, clock, "gpt-4o-mini")
    assert text_of(chunks) == "fallback"
    assert len(llm_fake.calls_to("openai")) == 1  # not retried despite Retry-After
    assert router.breakers.get("openai").state is BreakerState.OPEN


async def test_bad_key_opens_the_breaker_and_falls_back(router, llm_fake, clock) -> None:  # type: ignore[no-untyped-def]
    llm_fake.cloudflare_token = "a-different-token"  # our configured token is now wrong: 401
    llm_fake.queue("openai", openai_stream(["ok"]))
    routed, _ = await collect(router, clock)
    assert routed.provider == "openai"
    assert router.breakers.get("workers-ai").state is BreakerState.OPEN


async def test_request_error_falls_back_but_does_not_count_against_the_provider(
    router, llm_fake, clock
) -> None:  # type: ignore[no-untyped-def]
    for _ in range(6):
        llm_fake.queue("workers", workers_error(5004))
        llm_fake.queue("openai", openai_stream(["ok"]))
        await collect(router, clock)
    snapshot = router.breakers.get("workers-ai").snapshot()
    assert snapshot.state is BreakerState.CLOSED and snapshot.failures_in_window == 0


async def test_breaker_opens_then_lets_one_probe_through_then_closes(
    router, llm_fake, clock
) -> None:  # type: ignore[no-untyped-def]
    llm_fake.respond_with("openai", lambda call: openai_stream(["fallback"]))
    for _ in range(5):
        llm_fake.queue("workers", workers_error(3040))
        await collect(router, clock)
    breaker = router.breakers.get("workers-ai")
    assert breaker.state is BreakerState.OPEN
    await collect(router, clock)
    assert len(llm_fake.calls_to("workers")) == 5  # open: not even tried

    await clock.advance(600)
    assert breaker.state is BreakerState.HALF_OPEN
    llm_fake.queue("workers", workers_stream(["slow probe"], delay=0.05))
    probe = router.stream(router.catalog.resolve("llama-3.1-8b"), PROMPT)
    probe_iter = aiter(probe)
    first = await anext(probe_iter)  # the probe is in flight
    while not first.text:
        first = await anext(probe_iter)
    _, concurrent = await collect(router, clock)  # meanwhile another turn must not probe too
    assert text_of(concurrent) == "fallback"
    rest = [chunk async for chunk in probe_iter]
    assert first.text + text_of(rest) == "slow probe"
    assert len(llm_fake.calls_to("workers")) == 6
    assert breaker.state is BreakerState.CLOSED


async def test_everything_failing_says_what_was_tried(router, llm_fake, clock) -> None:  # type: ignore[no-untyped-def]
    llm_fake.queue("workers", workers_error(3040), workers_error(3040))
    llm_fake.queue("openai", openai_error(500, "server_error", None, "boom"))
    llm_fake.queue("anthropic", anthropic_error_overloaded(), anthropic_error_overloaded())
    with pytest.raises(NoProviderAvailable) as info:
        await collect(router, clock)
    message = str(info.value)
    assert "llama-3.1-8b" in message and "gpt-4o-mini" in message and "claude-haiku-4-5" in message
    assert not info.value.after_output
    assert len(llm_fake.calls_to("anthropic")) == 2  # the last in the chain gets one retry


async def test_unconfigured_providers_are_skipped_with_the_reason(llm_fake, clock) -> None:  # type: ignore[no-untyped-def]
    settings = settings_for(llm_fake, anthropic_api_key=None, cloudflare_api_token=None)
    router = build_router(settings, build_catalog(settings), clock=clock)
    llm_fake.queue("openai", openai_stream(["only openai"]))
    try:
        routed, chunks = await collect(router, clock)
    finally:
        await router.registry.aclose()
    assert text_of(chunks) == "only openai"
    assert "CLOUDFLARE_API_TOKEN" in routed.attempts[0].outcome


async def test_a_model_none_of_whose_chain_is_configured_says_which_key_is_missing(
    llm_fake: LLMFake,
) -> None:
    settings = settings_for(
        llm_fake, anthropic_api_key=None, cloudflare_api_token=None, openai_api_key=None
    )
    router = build_router(settings, build_catalog(settings))
    partly = build_router(
        settings_for(llm_fake, cloudflare_api_token=None), build_catalog(settings)
    )
    try:
        entry = router.catalog.resolve("llama-3.1-8b")
        missing = router.unconfigured(entry)
        assert missing is not None and "llama-3.1-8b" in missing
        assert "CLOUDFLARE_API_TOKEN" in missing
        assert partly.unconfigured(entry) is None  # its fallbacks can answer
    finally:
        await router.registry.aclose()
        await partly.registry.aclose()


def anthropic_error_overloaded():  # type: ignore[no-untyped-def]
    from tests.fakes.llm_server import anthropic_error

    return anthropic_error(529, "overloaded_error", "Overloaded")


def test_provider_errors_carry_no_secret() -> None:
    error = ProviderError("boom", provider="openai")
    assert str(error) == "openai: boom"


async def test_a_full_local_connection_pool_falls_back_without_blaming_the_provider(
    llm_fake: LLMFake, clock: FakeClock
) -> None:
    import httpx

    from bot.llm.openai_compat import OpenAICompatProvider
    from bot.llm.registry import ProviderRegistry, ProviderStatus
    from bot.llm.router import LLMRouter
    from bot.llm.workers_ai import WorkersAIProvider
    from bot.resilience.breaker import BreakerBoard
    from tests.support import ACCOUNT

    one_connection = httpx.AsyncClient(
        limits=httpx.Limits(max_connections=1), timeout=httpx.Timeout(5, pool=0.1)
    )
    workers = WorkersAIProvider(
        ACCOUNT,
        llm_fake.cloudflare_token,
        api_base_url=llm_fake.cloudflare_api_base,
        client=one_connection,
    )
    openai = OpenAICompatProvider("openai", llm_fake.openai_base, llm_fake.openai_key)
    settings = settings_for(llm_fake)
    registry = ProviderRegistry(
        {"workers-ai": workers, "openai": openai},
        [ProviderStatus("workers-ai", True, "", ""), ProviderStatus("openai", True, "", "")],
    )
    router = LLMRouter(registry, build_catalog(settings), BreakerBoard(clock=clock), clock=clock)
    llm_fake.queue("workers", workers_stream(["slow ", "answer"], delay=0.5))
    llm_fake.queue("openai", openai_stream(["fallback"]))
    try:
        holder = aiter(router.stream(router.catalog.resolve("llama-3.1-8b"), PROMPT))
        first = await anext(holder)  # the only pooled connection is now busy streaming
        while not first.text:
            first = await anext(holder)
        routed = router.stream(router.catalog.resolve("llama-3.1-8b"), PROMPT)
        second = [chunk async for chunk in routed]
        assert text_of(second) == "fallback" and routed.provider == "openai"
        snapshot = router.breakers.get("workers-ai").snapshot()
        assert snapshot.state is BreakerState.CLOSED and snapshot.failures_in_window == 0
        rest = [chunk async for chunk in holder]
        assert first.text + text_of(rest) == "slow answer"
    finally:
        await one_connection.aclose()
        await openai.aclose()
