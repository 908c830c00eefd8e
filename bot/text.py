"""Text at the edges: what users type and what providers stream, made storable everywhere.

JSON lets a string carry UTF-16 surrogates (`"\\ud83d\\ude00"` is 😀; `"\\ud800"` alone is
nothing): Python decodes each escape to its own code point, which no UTF-8 encoder, SQLite or
PostgreSQL will take. PostgreSQL's text also refuses NUL. `clean_text` joins surrogate pairs,
turns a lone surrogate into U+FFFD and drops NUL; `StreamText` does the same for a stream whose
events may split a pair between them (a provider streaming an emoji in two deltas).
"""

from __future__ import annotations

import re

REPLACEMENT = "\ufffd"
_NUL = "\x00"


def clean_text(text: str) -> str:
    """`text` with surrogate pairs joined, lone surrogates replaced and NUL removed."""
    if _NUL in text:
        text = text.replace(_NUL, "")
    if text.isascii():
        return text
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:  # surrogates: UTF-16 joins the pairs and replaces the rest
        return text.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "replace")
    return text


def _is_high_surrogate(char: str) -> bool:
    return "\ud800" <= char <= "\udbff"


class StreamText:
    """Cleans a stream of text pieces, holding a trailing high surrogate for the next piece."""

    __slots__ = ("_held",)

    def __init__(self) -> None:
        self._held = ""

    def feed(self, piece: str) -> str:
        if self._held:
            piece, self._held = self._held + piece, ""
        if piece and _is_high_surrogate(piece[-1]):
            piece, self._held = piece[:-1], piece[-1]
        return clean_text(piece) if piece else piece

    def flush(self) -> str:
        """What is held at the end of the stream (a high surrogate alone: U+FFFD)."""
        held, self._held = self._held, ""
        return clean_text(held) if held else ""


THREAD_NAME_MAX = 100


def thread_name(prompt: str) -> str:
    """A thread's name from the prompt that starts it: mentions (Discord `<@123>`, Slack
    `<@U123>`) out, whitespace collapsed, at most 100 characters."""
    text = re.sub(r"<@!?[A-Za-z0-9]+>", "", prompt)
    text = " ".join(text.split()) or "Parley chat"
    return text if len(text) <= THREAD_NAME_MAX else text[: THREAD_NAME_MAX - 1].rstrip() + "…"
