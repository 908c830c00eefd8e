"""Cut a long Markdown reply into platform-sized messages, keeping ``` code fences intact.

A break prefers a paragraph, then a line, then a space in the latter half of the room, else a
hard cut that splits no CRLF or grapheme. A break inside a fence closes the fence at the end of the
part and reopens it, with its info string, at the start of the next; both count against the budget.

Splits are stable as the text grows. A part is sealed only once the text runs past its whole window
(the room plus one character of look-ahead), and its break is chosen from that window alone, so
appending text never moves an earlier break. `layout` returns the sealed parts of a growing text;
`split_parts` also breaks the rest, for a text that is complete.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass

MIN_BUDGET = 8
"""The smallest `max_chars` the splitter accepts."""

_PARA, _LINE, _SPACE, _HARD = range(4)
_NO_SPLIT_BEFORE = frozenset("\u200d\ufe0e\ufe0f")  # zero-width joiner, variation selectors
_CUT_TRIES = 64
_LOOKAHEAD = 8
"""Characters after a break that must be known before it counts as settled (a fence line's
start is up to three spaces and three backticks)."""


@dataclass(frozen=True, slots=True)
class Fence:
    """An open ``` code fence: its backtick run and its info string (the language)."""

    marker: str
    info: str = ""

    @property
    def opener(self) -> str:
        return f"{self.marker}{self.info}\n"

    @property
    def closer(self) -> str:
        return f"\n{self.marker}"


@dataclass(frozen=True, slots=True)
class Part:
    """One message's worth of the source: `body` is `source[start:end]`; `sep` the whitespace
    dropped at the break after it; `opener`/`closer` the fence lines added around it."""

    start: int
    end: int
    body: str
    sep: str = ""
    opener: str = ""
    closer: str = ""

    @property
    def text(self) -> str:
        return f"{self.opener}{self.body}{self.closer}"


@dataclass(frozen=True, slots=True)
class Layout:
    """A growing text cut so far: `sealed` parts never change as text is appended; `tail` is the
    rest as it may be shown now (in rare cases a few characters short, until the next break)."""

    sealed: tuple[Part, ...]
    tail: Part


def split_text(text: str, max_chars: int) -> list[str]:
    """Cut a complete reply into message texts of at most `max_chars` characters each."""
    return [part.text for part in split_parts(text, max_chars)]


def split_parts(text: str, max_chars: int) -> list[Part]:
    """Like `split_text`, with the offsets and separators: `"".join(p.body + p.sep)` is `text`."""
    parts, _, _ = _cut(text, max_chars, final=True)
    return parts


def layout(text: str, max_chars: int) -> Layout:
    """Cut a text that is still growing: the sealed parts, and the tail as it may be shown now."""
    parts, start, fence = _cut(text, max_chars, final=False)
    return Layout(tuple(parts), _tail(text, start, fence, max_chars))


def settled_end(body: str, fence: Fence | None, max_chars: int) -> int:
    """How much of a growing message's `body` stays in that message whatever text follows: the
    message will break at or after this offset (0 when no break in sight is settled yet).

    `fence` is the fence reopened at the start of the message. The break the splitter would pick
    now, were the text to run on with no break in it, is the last break of the best kind in the
    latter half of the room; later text only adds breaks further on, so the break can only move
    later. A break is only trusted with _LOOKAHEAD known characters after it: they decide whether
    it may be cut there (a fence may be starting).
    """
    room = max_chars - len(fence.opener if fence else "")
    if len(body) > room:
        return 0
    pad = "x" * (room + 1 - len(body))
    probe = body
    for _ in range(_LOOKAHEAD):
        end, nxt, _ = _find_break(probe + pad, 0, fence, max_chars)
        if end == nxt or end >= len(body):
            return 0  # a hard cut: no soft break settled
        if end <= len(body) - _LOOKAHEAD:
            return end
        probe = probe[:end] + "x" * (nxt - end) + probe[nxt:]  # too near the end: not this one
    return 0


def open_fence(text: str, fence: Fence | None = None) -> Fence | None:
    """The fence still open at the end of `text` (its last line read as complete), or None.

    `fence` is the fence already open where `text` begins.
    """
    for line in text.split("\n"):
        fence = _after_line(fence, line)
    return fence


def close_fence(text: str) -> str:
    """`text`, with a closing line added if it ends inside a code fence."""
    fence = open_fence(text)
    return text + fence.closer if fence else text


def render_live(part: Part, marker: str) -> str:
    """A part as shown while the reply streams: the marker at the end of the text, inside any open
    fence (whose closer stays last so the platform renders the block). At most `len(marker) + 1`
    characters longer than `part.text`."""
    if not marker:
        return part.text
    last_line = part.body[part.body.rfind("\n") + 1 :]
    if _starts_fence(last_line, 0, len(last_line)):
        # A fence line must end in its backticks or info string; the marker goes on its own line.
        marker = "\n" + marker.lstrip()
    return f"{part.opener}{part.body}{marker}{part.closer}"


# --- fences -------------------------------------------------------------------------------------


def _starts_fence(s: str, i: int, end: int) -> bool:
    """Whether s[i:end] starts like a fence line: up to three spaces, then three backticks."""
    k = i
    while k < end and k - i < 3 and s[k] == " ":
        k += 1
    return s.startswith("```", k, end)


def _after_line(fence: Fence | None, line: str) -> Fence | None:
    """The fence state after one (complete) line, CommonMark-style for backtick fences."""
    line = line.removesuffix("\r")
    if not _starts_fence(line, 0, len(line)):
        return fence
    body = line.lstrip(" ")
    run = len(body) - len(body.lstrip("`"))
    marker, rest = body[:run], body[run:]
    if fence is None:
        return None if "`" in rest else Fence(marker, rest.strip())
    if len(marker) >= len(fence.marker) and not rest.strip(" \t"):
        return None
    return fence


def _closer_len(fence: Fence | None) -> int:
    return len(fence.closer) if fence else 0


def _reopen(fence: Fence | None, budget: int) -> Fence | None:
    """The fence to reopen in the next part; without its info string, or not at all, if its
    lines would take more than half the budget (only absurd fences do)."""
    if fence is None:
        return None
    for candidate in (fence, Fence(fence.marker)):
        if len(candidate.opener) + len(candidate.closer) <= budget // 2:
            return candidate
    return None


# --- cutting ------------------------------------------------------------------------------------


def _check(max_chars: int) -> None:
    if max_chars < MIN_BUDGET:
        raise ValueError(f"max_chars must be at least {MIN_BUDGET}, got {max_chars}")


def _cut(text: str, budget: int, *, final: bool) -> tuple[list[Part], int, Fence | None]:
    """Parts from the start of `text`; for a growing text, stop where the unsealed tail begins."""
    _check(budget)
    parts: list[Part] = []
    start, fence = 0, None
    while start < len(text):
        opener = fence.opener if fence else ""
        room = budget - len(opener)
        rest = len(text) - start
        if rest <= room:
            if not final:
                break  # not sealed until the text runs past the whole window
            end_fence = open_fence(text[start:], fence)
            if rest + _closer_len(end_fence) <= room:
                closer = end_fence.closer if end_fence else ""
                parts.append(Part(start, len(text), text[start:], "", opener, closer))
                return parts, len(text), None
        end, nxt, state = _find_break(text, start, fence, budget)
        closer = state.closer if state else ""
        parts.append(Part(start, end, text[start:end], text[end:nxt], opener, closer))
        start, fence = nxt, _reopen(state, budget)
    return parts, start, fence


def _find_break(
    text: str, start: int, fence: Fence | None, budget: int
) -> tuple[int, int, Fence | None]:
    """Where the part starting at `start` ends: (end, start of the next part, fence open at end).

    Reads only `text[start : start + room + 1]`, which is what keeps sealed parts stable.
    """
    room = budget - len(fence.opener if fence else "")
    window = text[start : start + room + 1]
    n = len(window)
    floor = room // 2
    best: dict[int, tuple[int, int, Fence | None]] = {}
    low: tuple[int, int, Fence | None] | None = None  # the latest soft break below the floor

    def offer(kind: int, end: int, nxt: int, state: Fence | None) -> None:
        nonlocal low
        if kind != _HARD and end < floor:
            low = (end, nxt, state)
        else:
            best[kind] = (end, nxt, state)

    state = fence
    line_start = 0
    while line_start < n:
        newline = window.find("\n", line_start)
        line_end = n if newline < 0 else newline
        # Never cut inside a fence line, nor leave a fragment that starts like one.
        if not _starts_fence(window, line_start, line_end):
            limit = min(line_end, room - _closer_len(state), n - 1)
            space = window.rfind(" ", line_start, limit + 1)
            while space > 0 and not (
                _safe_cut(window, space) and not _starts_fence(window, space + 1, line_end)
            ):
                space = window.rfind(" ", line_start, space)
            if space > 0:
                offer(_SPACE, space, space + 1, state)
            for cut in range(limit, line_start, -1):
                if _safe_cut(window, cut) and not _starts_fence(window, cut, line_end):
                    offer(_HARD, cut, cut, state)
                    break
        if newline < 0:
            break
        end = newline - 1 if newline > line_start and window[newline - 1] == "\r" else newline
        after = _after_line(state, window[line_start:end])
        nxt, kind = newline + 1, _LINE
        if window.startswith("\n", nxt):
            nxt, kind = nxt + 1, _PARA
        elif window.startswith("\r\n", nxt):
            nxt, kind = nxt + 2, _PARA
        if end > 0 and end + _closer_len(after) <= room:
            offer(kind, end, nxt, after)
        state, line_start = after, newline + 1

    for kind in (_PARA, _LINE, _SPACE, _HARD):
        if kind in best:
            return _absolute(start, best[kind])
    if low is not None:
        return _absolute(start, low)
    cut, state = _max_cut(window, fence, room, min(room, n - 1))
    return start + cut, start + cut, state


def _absolute(start: int, brk: tuple[int, int, Fence | None]) -> tuple[int, int, Fence | None]:
    end, nxt, state = brk
    return start + end, start + nxt, state


def _safe_cut(s: str, i: int) -> bool:
    """Whether cutting before s[i] keeps `\\r\\n`, surrogate pairs and combining sequences whole."""
    before, after = s[i - 1], s[i]
    return not (
        (before == "\r" and after == "\n")
        or before == "\u200d"
        or after in _NO_SPLIT_BEFORE
        or unicodedata.combining(after)
        or ("\ud800" <= before <= "\udbff" and "\udc00" <= after <= "\udfff")
        or "\U0001f3fb" <= after <= "\U0001f3ff"  # skin-tone modifiers
    )


def _max_cut(window: str, fence: Fence | None, room: int, high: int) -> tuple[int, Fence | None]:
    """The longest prefix (1..high) that fits the room with its closer: a last resort for text
    with no break and no clean cut, such as a run of combining marks or of backticks."""
    low = max(0, high - _CUT_TRIES)
    for clean in (True, False):
        for cut in range(high, low, -1):
            if window[cut - 1] == "\r" and window[cut] == "\n":
                continue
            state = open_fence(window[:cut], fence)
            if cut + _closer_len(state) <= room and (not clean or _safe_cut(window, cut)):
                return cut, state
    # A backtick run longer than the room opens a fence whose closer cannot fit: cut it unclosed.
    cut = max(1, min(high, room - _closer_len(fence)))
    state = open_fence(window[:cut], fence)
    return cut, state if cut + _closer_len(state) <= room else None


def _tail(text: str, start: int, fence: Fence | None, budget: int) -> Part:
    """The unsealed rest of a growing text as it can be shown now, within the budget."""
    opener = fence.opener if fence else ""
    room = budget - len(opener)
    body = text[start:]
    end_fence = open_fence(body, fence)
    if len(body) + _closer_len(end_fence) > room:
        # Close to the limit inside a fence: hold back a few characters until the break is known.
        cut, end_fence = _max_cut(body, fence, room, min(room, len(body) - 1))
        body = body[:cut]
    closer = end_fence.closer if end_fence else ""
    return Part(start, start + len(body), body, "", opener, closer)


_CLOSER_ROOM = 16
"""Characters kept clear of the end of a message's room, where a fence closer may move the break."""


def settled_prefix(frame: str, max_chars: int, opener: str | None = None) -> str:
    """The part of a streaming message's text that will still be there when it is final.

    `opener`: the fence line the splitter put before the message's own text (its Part's
    `opener`, "" for none). Without it, a message beginning with a fence line is taken to
    continue a fence from the message before. Either way one assumption, only broken by
    contrived text: the message will break past half its room (a fence-like line with no break
    in it can deny that).
    """
    text = _without_live_closer(frame)
    fence = None
    if opener is not None:
        line = opener.rstrip("\n")
        if line:
            marker = line[: len(line) - len(line.lstrip("`"))]
            fence = Fence(marker, line[len(marker) :])
    elif text.startswith("```") and "\n" in text:
        line = text[: text.index("\n")]
        marker = line[: len(line) - len(line.lstrip("`"))]
        fence = Fence(marker, line[len(marker) :])
    lead = len(fence.opener) if fence else 0
    room = max_chars - lead
    # A soft break is never taken below half the room; past it, the splitter's own choice of
    # break, were the text to end now, only moves later as text arrives.
    settled = min(lead + settled_end(text[lead:], fence, max_chars), max_chars - _CLOSER_ROOM)
    return text[: max(min(len(text), lead + room // 2), settled)]


def _without_live_closer(frame: str) -> str:
    """`frame` without the fence closer the streamer adds at the end of an unfinished code block."""
    cut = frame.rfind("\n")
    if cut < 0:
        return frame
    last = frame[cut + 1 :]
    if len(last) >= 3 and set(last) == {"`"} and open_fence(frame[:cut]) is not None:
        return frame[:cut]
    return frame


def showable(parts: Sequence[Part]) -> list[Part]:
    """Parts with something to show: a platform refuses a blank message, and a part can be
    nothing but whitespace when a model emits a run of blank lines longer than a message."""
    return [part for part in parts if part.text.strip()]
