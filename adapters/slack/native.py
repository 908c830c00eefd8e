"""Slack's native streaming (chat.startStream / appendStream / stopStream) behind the Surface port.

The surface declares itself append-only (PlatformLimits.append_only), so the core's streamer
sends a streaming message only text that can no longer change (splitting.settled_prefix); this
appends what is new of it, and the rest when the message's text is final. What was appended is
never sent again, so no text shows twice.
"""

from __future__ import annotations

from dataclasses import dataclass

NATIVE_REFUSALS = frozenset(
    {
        "feature_not_enabled",
        "unknown_method",
        "method_deprecated",
        "missing_scope",
        "not_allowed_token_type",
        "team_access_not_granted",
    }
)
"""Errors meaning the workspace cannot stream natively: latch it and post-and-edit instead."""


@dataclass(slots=True)
class NativeStream:
    """One streamed message: what was appended so far, and the newest text the core wants."""

    ts: str
    committed: str
    latest: str
    open: bool = True

    def delta(self, target: str) -> str | None:
        """What to append to show `target` ("" when it shows no more than is out already); None
        when `target` contradicts what is shown."""
        if self.committed.startswith(target):
            return ""
        if not target.startswith(self.committed):
            return None
        return target[len(self.committed) :]
