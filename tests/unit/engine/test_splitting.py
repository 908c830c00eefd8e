"""The splitter: parts fit, nothing is lost, fences stay balanced, and sealed parts never move."""

from __future__ import annotations

import re

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.engine.splitting import (
    Fence,
    Part,
    close_fence,
    layout,
    open_fence,
    render_live,
    split_parts,
    split_text,
)

FENCE_LINE = re.compile(r"^ {0,3}```")


def reassemble(parts: list[Part]) -> str:
    return "".join(p.body + p.sep for p in parts)


def fence_lines(text: str) -> int:
    """Lines that open or close a fence, counted independently of the splitter's own scanner."""
    return sum(1 for line in text.split("\n") if FENCE_LINE.match(line))


# --- examples -----------------------------------------------------------------------------------


def test_short_text_is_one_part() -> None:
    assert split_text("Hello, world.", 2000) == ["Hello, world."]


def test_empty_text_has_no_parts() -> None:
    assert split_text("", 2000) == []


def test_tiny_budget_is_refused() -> None:
    with pytest.raises(ValueError):
        split_text("abc", 4)


def test_breaks_at_the_last_paragraph_in_the_latter_half() -> None:
    text = "a" * 30 + "\n\n" + "b" * 30 + "\n\n" + "c" * 30
    assert split_text(text, 70) == ["a" * 30 + "\n\n" + "b" * 30, "c" * 30]


def test_paragraph_early_in_the_window_loses_to_a_later_line_break() -> None:
    text = "a" * 10 + "\n\n" + "b" * 40 + "\n" + "c" * 40
    assert split_text(text, 60) == ["a" * 10 + "\n\n" + "b" * 40, "c" * 40]


def test_falls_back_to_a_space_then_to_a_hard_cut() -> None:
    words = "word " * 30
    parts = split_text(words.strip(), 42)
    assert all(len(p) <= 42 and not p.startswith(" ") and not p.endswith(" ") for p in parts)
    assert " ".join(parts) == words.strip()
    assert split_text("x" * 100, 40) == ["x" * 40, "x" * 40, "x" * 20]


def test_never_cuts_a_crlf_or_a_combining_mark() -> None:
    crlf = "ab" * 9 + "\r\n" + "cd" * 20  # the only line break sits right at the budget edge
    for part in split_parts(crlf, 20):
        assert not part.body.endswith("\r") and not part.body.startswith("\n")
    accented = "e\u0301" * 30
    for part in split_parts(accented, 21):
        assert part.body[0] == "e"


@pytest.mark.parametrize(
    "text",
    [("a" + "`" * 3000) * 3, "\u0301" * 9000, "`" * 5000 + "\ncode\n" + "`" * 5000],
    ids=["backtick-runs", "combining-marks", "giant-fence"],
)
def test_degenerate_runs_still_make_full_size_parts(text: str) -> None:
    parts = split_parts(text, 2000)
    assert reassemble(parts) == text
    assert all(len(p.text) <= 2000 for p in parts)
    assert len(parts) <= len(text) // 1900 + 2


def test_fence_is_closed_and_reopened_with_its_info_string() -> None:
    code = "\n".join(f"x = {i}" for i in range(40))
    text = f"Here:\n\n```python\n{code}\n```\n\nDone."
    parts = split_text(text, 120)
    assert len(parts) > 2
    for i, part in enumerate(parts):
        assert len(part) <= 120
        assert fence_lines(part) % 2 == 0, part
        if 0 < i < len(parts) - 1:
            assert part.startswith("```python\n") and part.endswith("\n```")


def test_reply_of_3000_chars_with_code_arrives_as_two_balanced_parts() -> None:
    code = "\n".join(f"    total += values[{i}]  # step {i}" for i in range(40))
    prose = " ".join(["The quick brown fox jumps over the lazy dog."] * 30)
    text = f"{prose}\n\n```python\ndef add(values):\n{code}\n```\n\n{prose[:300]}"
    assert 2900 <= len(text) <= 3100
    parts = split_parts(text, 2000)
    assert len(parts) == 2
    assert all(len(p.text) <= 2000 and fence_lines(p.text) % 2 == 0 for p in parts)
    assert reassemble(parts) == text


def test_unclosed_fence_at_the_end_is_closed() -> None:
    assert split_text("See:\n```sh\nls -l", 100) == ["See:\n```sh\nls -l\n```"]
    assert close_fence("See:\n```sh\nls -l") == "See:\n```sh\nls -l\n```"
    assert close_fence("See:\n```sh\nls -l\n```") == "See:\n```sh\nls -l\n```"


def test_open_fence_reads_the_last_line_as_complete() -> None:
    assert open_fence("```py\nx") == Fence("```", "py")
    assert open_fence("```py\nx\n```") is None
    assert open_fence("```py\nx\n``") == Fence("```", "py")
    assert open_fence("````\n```\n") == Fence("````")  # a shorter run does not close
    assert open_fence("inline ```code``` is not a fence") is None


def test_live_marker_sits_inside_an_open_fence_before_its_closer() -> None:
    tail = layout("Look:\n```py\nprint(1)", 100).tail
    assert render_live(tail, " ▌") == "Look:\n```py\nprint(1) ▌\n```"


def test_live_marker_goes_on_its_own_line_after_a_fence_line() -> None:
    tail = layout("```py\nprint(1)\n```", 100).tail
    assert render_live(tail, " ▌") == "```py\nprint(1)\n```\n▌"


def test_growing_text_is_sealed_only_once_it_runs_past_the_window() -> None:
    assert layout("a" * 40, 40).sealed == ()
    lay = layout("a" * 20 + " " + "b" * 20, 40)
    assert [p.text for p in lay.sealed] == ["a" * 20]
    assert lay.tail.body == "b" * 20


def test_tail_near_the_limit_inside_a_fence_holds_back_rather_than_overflow() -> None:
    text = "```\n" + "x" * 34  # fits without its closer, not with it
    lay = layout(text, 40)
    assert lay.sealed == ()
    assert len(lay.tail.text) <= 40 and lay.tail.text.endswith("\n```")
    final = split_text(text, 40)
    assert all(len(p) <= 40 for p in final) and len(final) == 2


# --- properties ---------------------------------------------------------------------------------

ANY_TEXT = st.text(alphabet="ab `\n\r\u0301é", max_size=300)
BUDGETS = st.integers(min_value=8, max_value=80)


@st.composite
def markdown(draw: st.DrawFn) -> str:
    """Prose and well-formed fenced code: what a model writes."""
    lines: list[str] = []
    for _ in range(draw(st.integers(0, 40))):
        if draw(st.booleans()):
            info = draw(st.sampled_from(["", "python", "js", "rust"]))
            body = draw(st.lists(st.text(alphabet="xyz =()\t", max_size=40), max_size=8))
            lines += [f"```{info}", *body, "```"]
        else:
            words = draw(st.lists(st.text(alphabet="lorem ipsum,.*", max_size=12), max_size=12))
            lines.append(" ".join(f"`{w}`" if w.startswith("i") else w for w in words))
    return draw(st.sampled_from(["\n", "\n\n"])).join(lines)


@settings(max_examples=300, deadline=None)
@given(ANY_TEXT, BUDGETS)
def test_every_part_fits_and_reassembles_exactly(text: str, budget: int) -> None:
    parts = split_parts(text, budget)
    assert all(len(p.text) <= budget for p in parts)
    assert all(p.body for p in parts)
    assert reassemble(parts) == text
    assert all(p.sep.strip() == "" for p in parts)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(markdown(), st.integers(min_value=40, max_value=200))
def test_fences_are_balanced_in_every_part(text: str, budget: int) -> None:
    parts = split_parts(text, budget)
    assert all(len(p.text) <= budget for p in parts)
    assert reassemble(parts) == text
    for part in parts:
        assert fence_lines(part.text) % 2 == 0, part.text
        assert open_fence(part.text) is None


@settings(max_examples=300, deadline=None)
@given(ANY_TEXT, BUDGETS)
def test_fences_are_balanced_by_the_splitters_own_reading_for_any_text(
    text: str, budget: int
) -> None:
    assert all(open_fence(p) is None for p in split_text(text, budget))


def _grow(text: str, cuts: list[int]) -> list[str]:
    points = sorted({min(c, len(text)) for c in cuts} | {len(text)})
    return [text[:c] for c in points]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.one_of(ANY_TEXT, markdown()),
    BUDGETS,
    st.lists(st.integers(min_value=0, max_value=2000), max_size=40),
)
def test_sealed_parts_never_change_as_text_grows(text: str, budget: int, cuts: list[int]) -> None:
    sealed: tuple[Part, ...] = ()
    for prefix in _grow(text, cuts):
        lay = layout(prefix, budget)
        assert lay.sealed[: len(sealed)] == sealed
        assert all(len(p.text) <= budget for p in lay.sealed)
        assert len(lay.tail.text) <= budget
        assert lay.tail.start == (lay.sealed[-1].end + len(lay.sealed[-1].sep) if lay.sealed else 0)
        assert len(render_live(lay.tail, " ▌")) <= budget + len(" ▌") + 1
        sealed = lay.sealed
    assert tuple(split_parts(text, budget)[: len(sealed)]) == sealed
