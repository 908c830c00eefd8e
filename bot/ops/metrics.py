"""Prometheus metrics: one registry per process (per App, so tests stay independent).

Served as text at `/metrics` on the WebServer. Counters are fed by the chat engine at the end of
each turn; breaker states are read from the router's BreakerBoard at scrape time.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from decimal import Decimal
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from bot.resilience.breaker import BreakerSnapshot, BreakerState

if TYPE_CHECKING:
    from bot.llm.router import RoutedStream
    from bot.ops.stream_stats import StreamStats
    from bot.store.records import TurnResult

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

_BREAKER_VALUE = {BreakerState.CLOSED: 0, BreakerState.HALF_OPEN: 1, BreakerState.OPEN: 2}


class _BreakerCollector(Collector):
    def __init__(self, sources: list[Callable[[], Iterable[BreakerSnapshot]]]) -> None:
        self._sources = sources

    def collect(self) -> Iterable[Metric]:
        family = GaugeMetricFamily(
            "parley_breaker_state",
            "Circuit breaker state per provider: 0 closed, 1 half-open, 2 open.",
            labels=["provider"],
        )
        for source in self._sources:
            for snapshot in source():
                family.add_metric([snapshot.name], _BREAKER_VALUE[snapshot.state])
        yield family


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter(
            "parley_chat_requests",
            "Chat turns handled, by platform and outcome.",
            ["platform", "status"],
            registry=r,
        )
        self.refusals = Counter(
            "parley_chat_refusals",
            "Messages refused before any provider call, by reason.",
            ["platform", "reason"],
            registry=r,
        )
        self.ttft = Histogram(
            "parley_time_to_first_token_seconds",
            "Time from the request to the first visible token.",
            ["provider", "model"],
            buckets=(0.1, 0.25, 0.5, 1, 2, 4, 8, 16, 32),
            registry=r,
        )
        self.tokens_per_second = Histogram(
            "parley_tokens_per_second",
            "Completion tokens per second after the first token.",
            ["provider", "model"],
            buckets=(5, 10, 20, 40, 80, 160, 320),
            registry=r,
        )
        self.tokens = Counter(
            "parley_tokens",
            "Tokens used, by provider, model and kind.",
            ["provider", "model", "kind"],
            registry=r,
        )
        self.spend = Counter(
            "parley_spend_usd",
            "Spend in US dollars, by provider and model.",
            ["provider", "model"],
            registry=r,
        )
        self.posts = Counter(
            "parley_platform_posts", "Messages posted, by platform.", ["platform"], registry=r
        )
        self.edits = Counter(
            "parley_platform_edits", "Message edits, by platform.", ["platform"], registry=r
        )
        self.rate_limited = Counter(
            "parley_platform_rate_limited",
            "429s (rate limits) met while streaming, by platform.",
            ["platform"],
            registry=r,
        )
        self.provider_errors = Counter(
            "parley_provider_errors",
            "Failed provider attempts, by provider.",
            ["provider"],
            registry=r,
        )
        self.fallbacks = Counter(
            "parley_provider_fallbacks",
            "Replies served by a fallback, by the provider that was asked first and the one used.",
            ["from_provider", "to_provider"],
            registry=r,
        )
        self._breaker_sources: list[Callable[[], Iterable[BreakerSnapshot]]] = []
        r.register(_BreakerCollector(self._breaker_sources))

    def watch_breakers(self, source: Callable[[], Iterable[BreakerSnapshot]]) -> None:
        self._breaker_sources.append(source)

    def observe_turn(
        self, platform: str, routed: RoutedStream, stats: StreamStats, result: TurnResult
    ) -> None:
        """Count one ended chat turn: its status, platform calls, provider errors and
        fallbacks, and for the provider that answered its latency, speed, tokens and spend."""
        self.requests.labels(platform, result.status).inc()
        self.posts.labels(platform).inc(stats.posts)
        self.edits.labels(platform).inc(stats.edits)
        self.rate_limited.labels(platform).inc(stats.rate_limited)
        for attempt in routed.attempts:
            if attempt.outcome != "ok" and not attempt.outcome.startswith("skipped"):
                self.provider_errors.labels(attempt.provider).inc()
        if routed.fallback_used and routed.attempts and routed.provider:
            self.fallbacks.labels(routed.attempts[0].provider, routed.provider).inc()
        if routed.provider is None or result.model is None:
            return
        labels = (routed.provider, result.model)
        if result.ttft_ms is not None:
            self.ttft.labels(*labels).observe(result.ttft_ms / 1000)
            streaming_s = ((result.duration_ms or 0) - result.ttft_ms) / 1000
            if result.completion_tokens and streaming_s > 0:
                self.tokens_per_second.labels(*labels).observe(
                    result.completion_tokens / streaming_s
                )
        self.tokens.labels(*labels, "prompt").inc(result.prompt_tokens or 0)
        self.tokens.labels(*labels, "completion").inc(result.completion_tokens or 0)
        self.add_spend(*labels, result.cost)

    def add_spend(self, provider: str, model: str, cost: Decimal | None) -> None:
        if cost is not None and cost > 0:
            self.spend.labels(provider, model).inc(float(cost))

    def render(self) -> bytes:
        return generate_latest(self.registry)
