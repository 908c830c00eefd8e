from __future__ import annotations

from datetime import UTC, datetime

import pytest

from bot.engine.history import PromptTooLong, Turn, assemble, estimate_tokens, turns_before
from bot.store.records import StoredMessage


def msg(id_: int, role: str, content: str, parent: int | None = None, status: str = "complete"):  # type: ignore[no-untyped-def]
    return StoredMessage(
        id_,
        1,
        role,
        content,
        status,
        None,
        parent,
        None,
        None,
        None,  # type: ignore[arg-type]
        None,
        None,
        None,
        None,
        None,
        datetime.now(UTC),
    )


def test_keeps_system_and_newest_whole_turns_within_budget() -> None:
    turns = [Turn(f"question {i} " + "x" * 400, f"answer {i} " + "y" * 400) for i in range(10)]
    per_turn = estimate_tokens(turns[0].user) + estimate_tokens(turns[0].assistant or "")
    budget = estimate_tokens("sys") + estimate_tokens("now?") + 3 * per_turn
    messages = assemble("sys", turns, "now?", budget)
    assert messages[0].role == "system"
    assert messages[-1].content == "now?"
    kept = [m.content.split()[1] for m in messages[1:-1]]
    assert kept == ["7", "7", "8", "8", "9", "9"]


def test_a_message_too_long_for_the_model_is_refused() -> None:
    with pytest.raises(PromptTooLong):
        assemble("sys", [], "x" * 10_000, budget_tokens=100)


def test_turns_take_the_newest_regenerated_answer_and_skip_streaming_rows() -> None:
    rows = [
        msg(1, "user", "hi"),
        msg(2, "assistant", "first answer", parent=1),
        msg(3, "assistant", "regenerated answer", parent=1),
        msg(4, "user", "and?"),
        msg(5, "assistant", "", parent=4, status="streaming"),
        msg(6, "user", "current"),
    ]
    assert turns_before(rows, 6) == [Turn("hi", "regenerated answer"), Turn("and?", None)]
