"""What one reply cost on the platform: counted by the streamer, read by metrics and benchmarks."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(slots=True)
class StreamStats:
    """What one reply cost on the platform; read by metrics and benchmarks."""

    posts: int = 0
    edits: int = 0
    deletes: int = 0
    rate_limited: int = 0
    deferred: int = 0
    """Interim calls the adapter's own budget held back (no slot soon enough; nothing sent)."""
    errors: int = 0
    """Failed interim calls other than rate limits."""
    started_at: float | None = None
    first_visible_at: float | None = None
    """Clock time the reply's first text (not the placeholder) was on screen."""
