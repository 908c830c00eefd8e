"""Reasoning written into the answer's text as `<think>…</think>`, taken out of it as it streams.

DeepSeek R1 distills and QwQ on Workers AI, and many models behind Ollama or vLLM, write their
reasoning inline. Their chat templates often put the opening tag in the prompt, so the stream may
start inside the block with no `<think>` at all; either tag may be split across events. Only a
block at the start of the reply counts: a `<think>` later in an answer (code about tags, say) is
text.
"""

from __future__ import annotations

OPEN = "<think>"
CLOSE = "</think>"


class ThinkSplitter:
    """Feed text pieces; get back (answer, reasoning) pieces, holding what may be half a tag.

    `inside=True` (a model the catalog marks `thinks_inline`): the reply starts in the reasoning
    block whether or not it opens with the tag. Such a reply that neither opened nor closed a
    block was not reasoning after all: `flush` hands all of it back as the answer.
    """

    __slots__ = ("_held", "_mode", "_opened", "_reasoning")

    def __init__(self, *, inside: bool = False) -> None:
        self._mode = "think" if inside else "start"
        self._opened = False
        """An explicit `<think>` was seen (so the block is reasoning even if never closed)."""
        self._held = ""
        self._reasoning: list[str] = []
        """All reasoning so far, kept for a reply that turns out to have had none."""

    @property
    def thinking(self) -> bool:
        """Inside the reasoning block now."""
        return self._mode == "think"

    def feed(self, piece: str) -> tuple[str, str]:
        if not piece:
            return "", ""
        if self._mode == "answer":
            return piece, ""
        if self._mode == "after":  # the blank lines between the block and the answer
            piece = piece.lstrip()
            if piece:
                self._mode = "answer"
            return piece, ""
        text, self._held = self._held + piece, ""
        if self._mode == "start":
            lead = text.lstrip()
            if lead.startswith(OPEN):
                self._mode, self._opened = "think", True
                text = lead[len(OPEN) :]
            elif OPEN.startswith(lead):
                self._held = text  # blank, or the start of the tag: wait for more
                return "", ""
            else:
                self._mode = "answer"
                return text, ""
        elif not self._opened and not any(part.strip() for part in self._reasoning):
            # Inside from the start: the tag itself may still come first.
            lead = text.lstrip()
            if lead.startswith(OPEN):
                self._opened, text = True, lead[len(OPEN) :]
            elif OPEN.startswith(lead):
                self._held = text
                return "", ""
        return self._think(text)

    def _think(self, text: str) -> tuple[str, str]:
        end = text.find(CLOSE)
        if end >= 0:
            self._mode = "after"
            self._keep(text[:end])
            return self.feed(text[end + len(CLOSE) :])[0], text[:end]
        keep = _partial_suffix(text, CLOSE)
        if keep:
            text, self._held = text[:-keep], text[-keep:]
        self._keep(text)
        return "", text

    def _keep(self, reasoning: str) -> None:
        if reasoning:
            self._reasoning.append(reasoning)

    def flush(self) -> tuple[str, str]:
        """What is held at the end of the stream, as (answer, reasoning)."""
        held, self._held = self._held, ""
        if self._mode == "start":
            return held, ""
        if self._mode == "think" and not self._opened:
            # Never opened, never closed: the model wrote an answer; give it back whole.
            self._mode = "answer"
            return "".join(self._reasoning) + held, ""
        if self._mode == "think":
            return "", held
        return held, ""  # "after" holds nothing


def _partial_suffix(text: str, tag: str) -> int:
    """Length of the longest end of `text` that is the start of `tag`."""
    for size in range(min(len(tag) - 1, len(text)), 0, -1):
        if tag.startswith(text[-size:]):
            return size
    return 0


def no_answer(*, reasoned: bool, cut: bool, tools: tuple[str, ...] = ()) -> str:
    """What a reply with no text says instead (the chat surfaces and `ask` alike): it only
    reasoned (`cut`: until the token limit), only asked for tools, or said nothing."""
    if reasoned and cut:
        return (
            "The model spent its whole token limit thinking and gave no answer: ask again, or"
            " allow it more tokens."
        )
    if reasoned:
        return "The model thought it over but gave no answer."
    if tools:
        return f"The model asked to use {', '.join(tools)} and wrote no answer."
    if cut:
        return "The model gave no answer before it reached the token limit."
    return "The model returned an empty answer."


EXCERPT_CHARS = 1_200
"""Most characters of reasoning shown under an answer (SHOW_REASONING=summary)."""


def excerpt(reasoning: str, limit: int = EXCERPT_CHARS) -> str:
    """The reasoning as one paragraph, its start and its end when it is longer than `limit`
    (where a model states its plan and where it concludes)."""
    flat = " ".join(reasoning.split())
    if len(flat) <= limit:
        return flat
    head, tail = limit * 2 // 5, limit * 3 // 5
    return f"{flat[:head].rstrip()} … {flat[-tail:].lstrip()}"
