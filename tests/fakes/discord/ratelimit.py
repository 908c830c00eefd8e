"""Fixed-window rate limits that answer with Discord's headers and 429 bodies: per route, global."""

from __future__ import annotations

import time
from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class BucketSpec:
    limit: int
    window: float  # seconds


@dataclass(slots=True)
class _Window:
    started: float
    used: int = 0


@dataclass(slots=True)
class Verdict:
    allowed: bool
    headers: dict[str, str]
    retry_after: float = 0.0


@dataclass(slots=True)
class Buckets:
    """One window per (bucket name, major parameter), e.g. ("edit", channel_id)."""

    specs: dict[str, BucketSpec]
    send_headers: bool = True
    """False: no X-RateLimit-* on successes, so discord.py cannot wait pre-emptively."""
    _windows: dict[tuple[str, str], _Window] = field(default_factory=dict)
    _forced: dict[str, list[float]] = field(default_factory=dict)

    def force(self, name: str, *retry_after: float) -> None:
        """The next len(retry_after) requests of bucket `name` get a 429 with these waits."""
        self._forced.setdefault(name, []).extend(retry_after)

    def take(self, name: str, major: str) -> Verdict:
        spec = self.specs[name]
        now = time.monotonic()
        window = self._windows.get((name, major))
        if window is None or now - window.started >= spec.window:
            window = self._windows[(name, major)] = _Window(now)
        reset_after = max(spec.window - (now - window.started), 0.001)
        forced = self._forced.get(name)
        if forced:
            wait = forced.pop(0)
            return Verdict(False, self._headers(name, major, spec, 0, wait, limited=True), wait)
        if window.used >= spec.limit:
            return Verdict(
                False, self._headers(name, major, spec, 0, reset_after, limited=True), reset_after
            )
        window.used += 1
        remaining = spec.limit - window.used
        if not self.send_headers:
            return Verdict(True, {})
        return Verdict(True, self._headers(name, major, spec, remaining, reset_after))

    @staticmethod
    def _headers(
        name: str,
        major: str,
        spec: BucketSpec,
        remaining: int,
        reset_after: float,
        *,
        limited: bool = False,
    ) -> dict[str, str]:
        headers = {
            "X-RateLimit-Limit": str(spec.limit),
            "X-RateLimit-Remaining": str(remaining),
            "X-RateLimit-Reset": f"{time.time() + reset_after:.3f}",
            "X-RateLimit-Reset-After": f"{reset_after:.3f}",
            "X-RateLimit-Bucket": f"{name}-{major}",
        }
        if limited:
            headers |= {
                "Retry-After": str(max(1, round(reset_after))),
                "X-RateLimit-Scope": "user",
                "Via": "1.1 google",
            }
        return headers


@dataclass(slots=True)
class GlobalLimit:
    """One window for every request the global limit counts (Discord: 50 a second per bot)."""

    spec: BucketSpec
    _window: _Window | None = None

    def take(self) -> Verdict:
        now = time.monotonic()
        window = self._window
        if window is None or now - window.started >= self.spec.window:
            window = self._window = _Window(now)
        if window.used < self.spec.limit:
            window.used += 1
            return Verdict(True, {})  # like Discord: nothing tells a bot how much is left
        retry_after = max(self.spec.window - (now - window.started), 0.001)
        headers = {
            "Retry-After": str(max(1, round(retry_after))),
            "X-RateLimit-Global": "true",
            "X-RateLimit-Scope": "global",
            "Via": "1.1 google",
        }
        return Verdict(False, headers, retry_after)
