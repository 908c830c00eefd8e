"""A native stream's progress lines as task cards: the same cards and text however the streamer
cuts what it appends, nothing lost when a call fails, a quote never taken for a card."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from adapters.slack.native import NativeStream

REPLY = (
    "Let me look.\n\n"
    "> 🔧 `issues.search_issues` “login” … done (0.4 s)\n"
    "> 🔧 `issues.close_issue` … needs your approval: approved, done (0.1 s)\n"
    "> 🔎 Searching the web for “python” … failed: the search plan's limit is reached (0.2 s)\n\n"
    "Here it is.\n> a quote the model wrote\n> 🔧 not a tool, just a quote"
)


def stream_in(cuts: list[int]) -> list[dict[str, object]]:
    stream = NativeStream("ts", "", "")
    chunks: list[dict[str, object]] = []
    start = 0
    for end in [*sorted(set(cuts)), len(REPLY)]:
        chunks += stream.chunks(REPLY[start:end], final=False)
        start = end
    return chunks + stream.chunks("", final=True)


def text_of(chunks: list[dict[str, object]]) -> str:
    return "".join(str(c["text"]) for c in chunks if c["type"] == "markdown_text")


def last_cards(chunks: list[dict[str, object]]) -> dict[object, tuple[object, object]]:
    return {c["id"]: (c["title"], c["status"]) for c in chunks if c["type"] == "task_update"}


WHOLE = stream_in([])


def test_progress_lines_become_cards_and_the_rest_stays_text() -> None:
    assert text_of(WHOLE) == (
        "Let me look.\n\n\nHere it is.\n> a quote the model wrote\n> 🔧 not a tool, just a quote"
    )
    assert last_cards(WHOLE) == {
        "tool-1": ("issues.search_issues “login”", "complete"),
        "tool-2": ("issues.close_issue", "complete"),
        "tool-3": ("Searching the web for “python”", "error"),
    }


@given(st.lists(st.integers(0, len(REPLY)), max_size=40))
def test_the_same_cards_and_text_however_it_is_cut(cuts: list[int]) -> None:
    chunks = stream_in(cuts)
    assert text_of(chunks) == text_of(WHOLE)
    assert last_cards(chunks) == last_cards(WHOLE)
    for chunk in chunks:  # a card only once its title is whole
        if chunk["type"] == "task_update":
            assert chunk["title"] == last_cards(WHOLE)[chunk["id"]][0]


def test_a_failed_call_sends_its_cards_again() -> None:
    stream = NativeStream("ts", "", "")
    line = "> 🔧 `issues.search_issues` “login” …"
    with pytest.raises(RuntimeError), stream.sending():
        assert stream.chunks(line, final=False)
        raise RuntimeError("429")
    (card,) = stream.chunks(line, final=False)
    assert card["status"] == "in_progress" and card["id"] == "tool-1"
    (done,) = stream.chunks(" done (0.4 s)\n", final=False)
    assert (done["id"], done["status"]) == ("tool-1", "complete")
