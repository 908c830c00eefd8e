"""Slack's native streaming (chat.startStream / appendStream / stopStream) behind the Surface port.

The surface declares itself append-only (PlatformLimits.append_only), so the core's streamer
sends a streaming message only text that can no longer change (splitting.settled_prefix); this
appends what is new of it, and the rest when the message's text is final. What was appended is
never sent again, so no text shows twice.

A tool call's progress line ("> 🔧 `issues.search` “login” … done (0.4 s)") goes as a task card
instead (a `task_update` chunk, timeline display): its card is sent when the line starts and
again when its status changes; the line itself is never appended as text. A line still growing
is held back (`pending`) until it is whole or the message ends.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from bot.engine.rounds import PROGRESS, SEARCHING, read_progress

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
    pending: str = ""
    """The end of what was committed that is not sent yet: a progress line still growing."""
    cards: dict[str, str] = field(default_factory=dict)
    """Task cards sent, by id: the status each shows."""
    growing: str | None = None
    """The card of the progress line held in `pending`."""

    def chunks(self, delta: str, *, final: bool) -> list[dict[str, Any]]:
        """What to send for `delta` (appended to `committed` by the caller): markdown text, and
        a task card for each progress line that started or changed."""
        text, self.pending = self.pending + delta, ""
        growing, self.growing = self.growing, None
        out: list[dict[str, Any]] = []
        lines = text.split("\n")
        for index, line in enumerate(lines):
            last = index == len(lines) - 1
            card = read_progress(line)
            if card is None and last and not final and _may_become_progress(line):
                self.pending = line  # "> " or "> 🔧" so far: too early to tell
                break
            if card is not None and " …" not in line:
                if last and not final:
                    self.pending, self.growing = line, growing if index == 0 else None
                    break  # its title is not whole yet
                card = None  # a quote that only looks like one
            if card is None:
                _markdown(out, line if last else line + "\n")
                continue
            title, status, details = card
            key = growing if index == 0 and growing else f"tool-{len(self.cards) + 1}"
            if self.cards.get(key) != status:
                task = {"type": "task_update", "id": key, "title": title[:256], "status": status}
                if details:
                    task["details"] = details[:256]
                out.append(task)
                self.cards[key] = status
            if last and not final:
                self.pending, self.growing = line, key  # it may still grow: " done (0.4 s)"
        return out

    @contextlib.contextmanager
    def sending(self) -> Iterator[None]:
        """Around a call that sends `chunks`: if it fails, nothing of it counts as sent."""
        saved = (self.pending, self.growing, dict(self.cards))
        try:
            yield
        except BaseException:
            self.pending, self.growing, self.cards = saved
            raise

    def delta(self, target: str) -> str | None:
        """What to append to show `target` ("" when it shows no more than is out already); None
        when `target` contradicts what is shown."""
        if self.committed.startswith(target):
            return ""
        if not target.startswith(self.committed):
            return None
        return target[len(self.committed) :]


def _may_become_progress(line: str) -> bool:
    return any(p.startswith(line) for p in (PROGRESS, SEARCHING)) and bool(line)


def _markdown(out: list[dict[str, Any]], text: str) -> None:
    if not text:
        return
    if out and out[-1]["type"] == "markdown_text":
        out[-1]["text"] += text
    else:
        out.append({"type": "markdown_text", "text": text})
