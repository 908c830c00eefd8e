"""The native-stream prefix rule and the shared workspace budget, in isolation."""

from __future__ import annotations

import pytest

from adapters.slack.budget import TeamBudget
from adapters.slack.native import NativeStream, stable_prefix
from bot.engine.splitting import layout, render_live, split_text
from bot.ports import RateLimited


def test_live_fence_closer_is_held_back() -> None:
    assert stable_prefix("```py\nprint(1)\n```", 3_500) == "```py\nprint(1)"


def test_stable_prefix_is_a_prefix_of_every_later_frame_and_of_the_final_parts() -> None:
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
            delta = stream.delta(stable_prefix(frame, budget))
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
