"""The Slack command parsers and renderers that need no process: options, links, usage text."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from adapters.slack.conversations import history_blocks, permalink
from adapters.slack.personas import BadOptions, build_spec, parse_options
from bot.engine.conversations import ConversationSummary, HistoryPage
from bot.engine.usage import Period, UsageReport, format_usage
from bot.markup import DISCORD, MARKDOWN, SLACK, Markup
from bot.store.records import UserSpend


def test_persona_options_come_out_of_the_text_and_the_rest_is_the_prompt() -> None:
    name, options, prompt = parse_options(
        'pirate model:gpt-4o-mini temperature:0.4 tools:"a, b" Talk like a pirate.'
    )
    assert (name, prompt) == ("pirate", "Talk like a pirate.")
    spec = build_spec(name, options, prompt, None)
    assert (spec.model, spec.temperature, spec.tools) == ("gpt-4o-mini", 0.4, ("a", "b"))
    assert parse_options('x prompt:"Be brief."')[2] == "Be brief."


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("x temperature:1 temperature:2 hi", "`temperature` is given twice."),
        ('x prompt:"a" and b', "either as"),
    ],
)
def test_persona_options_refuse_ambiguity(text: str, message: str) -> None:
    with pytest.raises(BadOptions, match=message):
        parse_options(text)


def test_a_number_that_is_not_one_is_refused_by_name() -> None:
    name, options, prompt = parse_options("x max_tokens:1.5 hi")
    with pytest.raises(BadOptions, match="`max_tokens` must be a whole number"):
        build_spec(name, options, prompt, None)


def test_permalinks_point_at_the_thread_or_the_dm() -> None:
    assert permalink("acme", "C1", "1760000001.000002") == (
        "https://acme.slack.com/archives/C1/p1760000001000002"
    )
    assert permalink("acme", "D1", "") == "https://acme.slack.com/archives/D1"


def test_history_titles_cannot_forge_links_and_pages_get_buttons() -> None:
    item = ConversationSummary(
        7,
        "<https://evil|click> & me",
        datetime(2025, 1, 2, 3, 4, tzinfo=UTC),
        1,
        "C1",
        "1.2",
        False,
    )
    blocks = history_blocks(HistoryPage((item,), 2, 1, has_more=True), "acme")
    text = blocks[1]["text"]["text"]
    assert text.startswith(
        "*<https://acme.slack.com/archives/C1/p12|&lt;https://evil/click&gt; &amp; me>*"
    )
    assert "`#7`" in text and "1 message" in text and "2025-01-02 03:04 UTC" in text
    [actions] = [b for b in blocks if b["type"] == "actions"]
    assert [(e["text"]["text"], e["value"]) for e in actions["elements"]] == [
        ("Previous", "1"),
        ("Next", "3"),
    ]


@pytest.mark.parametrize(
    ("markup", "title", "who"),
    [
        (SLACK, "*Workspace usage*", "<@U0A>"),
        (DISCORD, "**Workspace usage**", "U0A"),  # not a Discord id: shown as it is
        (MARKDOWN, "**Workspace usage**", "U0A"),
    ],
)
def test_usage_is_written_in_each_platforms_markup(markup: Markup, title: str, who: str) -> None:
    when = datetime(2026, 1, 1, tzinfo=UTC)
    report = UsageReport(
        Period("Today", when, ()),
        Period("This month", when, ()),
        (UserSpend("U0A", 5, Decimal(0), 1),),
    )
    text = format_usage(report, title="Workspace usage", markup=markup)
    assert text.splitlines()[0] == f"{title} (UTC)"
    assert text.splitlines()[-1] == f"  1. {who}: 5 tokens, $0.00"
    assert DISCORD.mention("1234") == "<@1234>"
