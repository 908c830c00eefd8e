"""Slack's native streaming (chat.startStream / appendStream / stopStream) behind the Surface port.

Native streams only append, while the core's ReplyStreamer shows each message's whole text as it
stands and may still change its end: a closing code fence it adds while streaming, or a message
whose end moves back to a paragraph break when the text outgrows it. So only a prefix that can no
longer change is appended while a message streams; the rest goes out when the message is sealed
(the next message is posted) or final (it gets its Regenerate button). What was appended is never
sent again, so no text shows twice.
"""

from __future__ import annotations

from dataclasses import dataclass

from bot.engine.splitting import Fence, open_fence, settled_end

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

_CLOSER_SLACK = 16
"""Characters kept clear of the end of a message's room, where a fence closer may move the break."""


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


def stable_prefix(frame: str, max_chars: int) -> str:
    """The part of a streaming message's text that will still be there when it is final.

    Two assumptions, both only broken by contrived text: the message will break past half its
    room (a fence-like line with no break in it can deny that), and a message beginning with a
    fence line continues a fence from the message before.
    """
    text = _without_live_closer(frame)
    fence = None
    if text.startswith("```") and "\n" in text:
        line = text[: text.index("\n")]
        marker = line[: len(line) - len(line.lstrip("`"))]
        fence = Fence(marker, line[len(marker) :])
    opener = len(fence.opener) if fence else 0
    room = max_chars - opener
    # A soft break is never taken below half the room; past it, the splitter's own choice of
    # break, were the text to end now, only moves later as text arrives.
    settled = min(opener + settled_end(text[opener:], fence, max_chars), max_chars - _CLOSER_SLACK)
    return text[: max(min(len(text), opener + room // 2), settled)]


def _without_live_closer(frame: str) -> str:
    """`frame` without the fence closer the streamer adds at the end of an unfinished code block."""
    cut = frame.rfind("\n")
    if cut < 0:
        return frame
    last = frame[cut + 1 :]
    if len(last) >= 3 and set(last) == {"`"} and open_fence(frame[:cut]) is not None:
        return frame[:cut]
    return frame
