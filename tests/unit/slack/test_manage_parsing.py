"""Command parsers and renderers that need no process: options, links, blocks, usage text."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from decimal import Decimal
from unittest.mock import MagicMock

import pytest

from adapters.slack.replies import blocks_of
from bot.commands.reply import Button, Code, Place, Reply, When, render_line
from bot.commands.spec import BadOptions, Command, parse
from bot.commands.table import command_table
from bot.commands.usage import usage_lines
from bot.engine.personas import PersonaSpec
from bot.engine.usage import Period, UsageReport
from bot.markup import DISCORD, MARKDOWN, SLACK, Markup, discord_place, slack_place
from bot.store.records import UserSpend

TABLE = command_table(MagicMock())
CREATE, EDIT = TABLE["persona create"], TABLE["persona edit"]


def test_persona_options_come_out_of_the_text_and_the_rest_is_the_prompt() -> None:
    args = parse(
        CREATE, 'pirate model:gpt-4o-mini temperature:0.4 tools:"a, b" Talk like a pirate.', "slack"
    )
    spec = PersonaSpec(**args)
    assert (spec.name, spec.system_prompt) == ("pirate", "Talk like a pirate.")
    assert (spec.model, spec.temperature, spec.tools) == ("gpt-4o-mini", 0.4, ("a", "b"))
    assert parse(CREATE, 'x prompt:"Be brief."', "slack")["system_prompt"] == "Be brief."
    assert parse(EDIT, "x model:none tools:none", "slack") == {
        "name": "x",
        "model": None,
        "tools": (),
    }


def test_a_persona_may_show_its_models_reasoning() -> None:
    args = parse(CREATE, "thinker show_reasoning:summary Think aloud.", "slack")
    assert PersonaSpec(**args).show_reasoning == "summary"
    assert parse(EDIT, "thinker show_reasoning:none", "console")["show_reasoning"] is None
    # "off" is a choice here, not the word that clears: hidden whatever SHOW_REASONING says.
    assert parse(EDIT, "thinker show_reasoning:off", "slack")["show_reasoning"] == "off"
    with pytest.raises(BadOptions, match="`show_reasoning` must be one of off, summary"):
        parse(CREATE, "thinker show_reasoning:full hi", "slack")


@pytest.mark.parametrize(
    ("command", "text", "message"),
    [
        (CREATE, "x temperature:1 temperature:2 hi", "`temperature` is given twice."),
        (CREATE, 'x prompt:"a" and b', "Give the system prompt once."),
        (CREATE, "x", "`system prompt` is missing."),
        (
            CREATE,
            "x max_tokens:1.5 hi",
            "`max_tokens` must be a whole number from 1 to 999,999,999 (got '1.5').",
        ),
        (TABLE["history"], "0", "`page` must be a whole number from 1 to 10,000 (got '0')."),
        (CREATE, "x temperature:warm hi", "`temperature` must be a number (got 'warm')."),
        (TABLE["usage"], "everyone", "`scope` must be one of me, workspace."),
        (TABLE["history"], "2 3", "I don't know what '3' is."),
        (TABLE["archive"], "close_thread:yes", "`conversation` must be a whole number"),
    ],
)
def test_typed_options_are_refused_by_name_with_the_usage_line(
    command: Command, text: str, message: str
) -> None:
    with pytest.raises(BadOptions, match=re.escape(message)) as refused:
        parse(command, text, "slack")
    assert str(refused.value).endswith(f"\nUsage: {command.usage('slack')}")


def test_usage_lines_are_written_from_the_spec() -> None:
    assert TABLE["history"].usage("slack") == "`/history [page]`"
    assert TABLE["usage"].usage("discord") == "`/usage [scope]`"
    assert CREATE.usage("slack").startswith("`/persona create <name> <system prompt> [model:…]")


def test_links_point_at_the_thread_or_the_dm() -> None:
    slack = SLACK.at(slack_place("acme"))
    assert render_line((Place("C1", "1760000001.000002", "T"),), slack) == (
        "<https://acme.slack.com/archives/C1/p1760000001000002|T>"
    )
    assert render_line((Place("D1", "", "T"),), slack) == "<https://acme.slack.com/archives/D1|T>"
    discord = DISCORD.at(discord_place(None))
    assert render_line((Place("5", "", "a [b]"),), discord) == (
        "[a (b)](https://discord.com/channels/@me/5)"
    )


def test_titles_cannot_forge_links_and_buttons_get_stable_ids() -> None:
    when = datetime(2025, 1, 2, 3, 4, tzinfo=UTC)
    line = (Place("C1", "1.2", "<https://evil|click> & me"), " · ", When(when), " · ", Code("7"))
    reply = Reply(
        (line,), buttons=(Button("history", "1", "Previous"), Button("history", "3", "Next"))
    )
    blocks = blocks_of(reply, SLACK.at(slack_place("acme")))
    text = blocks[0]["text"]["text"]
    assert text.startswith(
        "<https://acme.slack.com/archives/C1/p12|&lt;https://evil/click&gt; &amp; me>"
    )
    assert "`7`" in text and "2025-01-02 03:04 UTC" in text
    [actions] = [b for b in blocks if b["type"] == "actions"]
    assert [(e["action_id"], e["text"]["text"], e["value"]) for e in actions["elements"]] == [
        ("parley_history_1", "Previous", "1"),
        ("parley_history_3", "Next", "3"),
    ]


def test_a_long_reply_is_split_into_sections_within_slacks_limit() -> None:
    reply = Reply(tuple((f"{n} " + "x" * 200,) for n in range(40)))
    blocks = blocks_of(reply, SLACK)
    assert len(blocks) > 1 and all(len(b["text"]["text"]) <= 3000 for b in blocks)
    assert "\n".join(b["text"]["text"] for b in blocks) == reply.text(SLACK)


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
    text = Reply(usage_lines(report, "Workspace usage")).text(markup)
    assert text.splitlines()[0] == f"{title} (UTC)"
    assert text.splitlines()[-1] == f"  1. {who}: 5 tokens, $0.00"
    assert DISCORD.mention("1234") == "<@1234>"
