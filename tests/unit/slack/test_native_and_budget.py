"""The native-stream prefix rule and the shared workspace budget, in isolation."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st

from adapters.slack.native import NativeStream
from bot.engine.splitting import layout, render_live, settled_prefix, split_parts, split_text
from bot.pacing import TeamBudget
from bot.ports import Deferred, RateLimited


def test_live_fence_closer_is_held_back() -> None:
    assert settled_prefix("```py\nprint(1)\n```", 3_500) == "```py\nprint(1)"


def test_settled_prefix_is_a_prefix_of_every_later_frame_and_of_the_final_parts() -> None:
    text = "".join(
        f"Paragraph {i} "
        + "word " * (i * 7 % 90)
        + ("\n```py\ncode()\n```\n" if i % 5 == 0 else "")
        + "\n\n"
        for i in range(40)
    ).strip()
    budget = 500
    final = split_text(text, budget)
    committed: dict[int, NativeStream] = {}
    for end in range(1, len(text) + 1, 11):
        lay = layout(text[:end].strip(), budget)
        frames = [p.text for p in lay.sealed] + [render_live(lay.tail, "")]
        for index, frame in enumerate(frames):
            stream = committed.setdefault(index, NativeStream(str(index), "", ""))
            delta = stream.delta(settled_prefix(frame, budget))
            assert delta is not None, (index, end)
            stream.committed += delta
    assert len(committed) == len(final) > 3
    for index, stream in committed.items():
        assert final[index].startswith(stream.committed)
        assert stream.delta(final[index]) is not None


def test_budget_spaces_calls_per_team_and_refuses_far_slots() -> None:
    now = [100.0]
    budget = TeamBudget(60, clock=lambda: now[0])  # one a second
    assert budget.claim("T1", max_wait=0) == 0
    assert budget.claim("T2", max_wait=0) == 0  # another workspace has its own budget
    assert budget.claim("T1", max_wait=5) == pytest.approx(1.0)
    with pytest.raises(RateLimited) as caught:
        budget.claim("T1", max_wait=1.5)
    assert caught.value.retry_after == pytest.approx(2.0)
    budget.back_off("T1", 10)
    assert budget.claim("T1", max_wait=float("inf")) == pytest.approx(10.0)


_SHORT = ["word", "w", " ", " ", "  ", "\n", "\n\n", "\r\n", "```py\n", "```\n", " ```", "é"]
_LONG = ["supercalifragilistic", "x" * 37]  # runs with no break in them
_PIECES = st.sampled_from([*_SHORT, "👍🏽", "-", *_LONG])


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(pieces=st.lists(_PIECES, min_size=1, max_size=400), budget=st.integers(40, 160))
@example(  # a reply that opens with a fence: once read as a fence continued, " su" went twice
    pieces=["```py\n", "word", "word", "word", "w", "w", " ", "supercalifragilistic"], budget=40
)
def test_what_a_native_stream_appends_is_never_taken_back(pieces: list[str], budget: int) -> None:
    """Stream a random text as the core shows it (growing, split into messages); the stable
    prefix appended to each native message is always a prefix of that message's final text."""
    text = "".join(pieces)
    final = split_text(text, budget) if text.strip() else []
    # Out of scope, by design (see settled_prefix): a text cut below half the room, which only a
    # fence-like line with no break in it causes. (A message that opens a fence in its own first
    # line is in scope: the streamer passes the splitter's opener, so it is not read as one.)
    parts = split_parts(text, budget) if text.strip() else []
    assume(all(p.end - p.start >= (budget - len(p.opener)) // 2 for p in parts[:-1]))
    committed: dict[int, NativeStream] = {}
    for end in range(1, len(text) + 1):
        lay = layout(text[:end], budget)
        frames = [(p.text, p.opener) for p in lay.sealed] + [
            (render_live(lay.tail, ""), lay.tail.opener)
        ]
        for index, (frame, opener) in enumerate(frames):
            stream = committed.setdefault(index, NativeStream(str(index), "", ""))
            delta = stream.delta(settled_prefix(frame, budget, opener))
            assert delta is not None, (index, end, frame, stream.committed)
            stream.committed += delta
    for index, stream in committed.items():
        if index < len(final):
            assert final[index].startswith(stream.committed), (index, final[index])
        else:
            assert not stream.committed.strip()


def test_plain_prose_is_appended_up_to_its_last_settled_word() -> None:
    text = " ".join(f"w{i:04d}" for i in range(500))  # 2,499 characters, no line breaks
    shown = settled_prefix(text, 3_500)
    assert text.startswith(shown)
    assert len(text) - len(shown) <= 12  # was: half the room (1,750 characters) until sealed


async def test_an_interim_frame_waits_for_its_place_in_line_at_the_streamer() -> None:
    from slack_sdk.web.async_client import AsyncWebClient

    from adapters.slack.surface import NATIVE_INTERVAL, SlackSurface, Workspaces

    spaces = Workspaces(AsyncWebClient(token="xoxb-x"), TeamBudget(60), TeamBudget(60))
    first, second = (
        SlackSurface(spaces, team="T1", channel=c, thread_ts="1.2", user="U1") for c in "AB"
    )
    assert first.native and first.limits.min_edit_interval == NATIVE_INTERVAL
    await first._slot(spaces.appends, final=False)  # its turn: the workspace's slot now
    with pytest.raises(Deferred) as deferred:  # the next is 1 s off: a place in line, kept
        await second._slot(spaces.appends, final=False)
    assert deferred.value.retry_after == pytest.approx(1.0, abs=0.05)
    # waited for before the text is chosen (not inside the call, with the text it had then)
    assert second.limits.min_edit_interval == pytest.approx(1.0, abs=0.05)
    with pytest.raises(Deferred) as deferred:  # the first comes back: behind the second
        await first._slot(spaces.appends, final=False)
    assert deferred.value.retry_after == pytest.approx(2.0, abs=0.05)
    assert second.limits.final_interval == 0.0  # a final text claims its slot itself
    other = SlackSurface(spaces, team="T2", channel="C1", thread_ts="1.2", user="U1")
    assert other.limits.min_edit_interval == NATIVE_INTERVAL  # another workspace: no wait
