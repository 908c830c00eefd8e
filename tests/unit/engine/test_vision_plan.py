"""A turn with pictures and a model that cannot see them (Planner.with_files): named as unseen
with the models that would see them, or answered by VISION_FALLBACK_MODEL, saying so."""

from __future__ import annotations

import pytest

from bot.attachments import Document, Picture, Read
from bot.catalog import Catalog, UnknownModel
from bot.engine.planning import Plan, Planner

CATALOG = Catalog.load()


def planner(fallback: str | None = None) -> Planner:
    return Planner(None, CATALOG, None, default_model="llama-3.1-8b", system_prompt=None,  # type: ignore[arg-type]
                   vision_fallback=fallback)  # fmt: skip


def plan(model: str) -> Plan:
    return Plan(CATALOG.resolve(model), None, None, 512, None)


PICTURE = Read(pictures=(Picture("chart.png", "image/jpeg", b"\xff\xd8\xff"),), problems=("x",))


def test_a_model_without_vision_names_the_pictures_and_who_would_see_them() -> None:
    planned = planner().with_files(plan("llama-3.1-8b"), PICTURE)
    assert planned.entry.name == "llama-3.1-8b"
    assert planned.notes[0] == "x"
    assert planned.notes[1].startswith(
        "chart.png: Llama 3.1 8B Instruct (fast) can't see images, so I answered from your words"
        " alone. Models that can: llama-3.2-vision, llama-4-scout, "
    )


def test_vision_fallback_answers_the_turn_and_says_so() -> None:
    planned = planner("llama-4-scout").with_files(plan("llama-3.1-8b"), PICTURE)
    assert planned.entry.name == "llama-4-scout"
    assert planned.notes == (
        "x",
        "Llama 4 Scout 17B 16E Instruct answered this one: Llama 3.1 8B Instruct (fast) can't"
        " see images.",
    )


def test_a_vision_model_or_a_turn_without_pictures_changes_nothing_but_the_notes() -> None:
    assert planner().with_files(plan("llama-4-scout"), PICTURE).notes == ("x",)
    text_only = Read(documents=(Document("a.txt", "a", 1),))
    assert planner("llama-4-scout").with_files(plan("llama-3.1-8b"), text_only).entry.name == (
        "llama-3.1-8b"
    )


def test_an_unknown_fallback_fails_at_start() -> None:
    with pytest.raises(UnknownModel):
        planner("no-such-model")
