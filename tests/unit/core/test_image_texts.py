"""The image texts every platform shows, written once in the core in each platform's markup."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

from bot.images.views import outcome_line, unknown_notice
from bot.markup import DISCORD, SLACK
from bot.store.records import ImageJob


def test_the_unknown_image_notice_is_written_once_in_each_markup() -> None:
    when = datetime(2026, 1, 1, tzinfo=UTC)
    job = ImageJob(
        "j1", "slack:T1", "slack", "C1", "", "U1", "a <fox> & owl " + "x" * 100, {}, "standard",
        "1024x1024", "openai-image", "openai", "gpt-image-1.5", Decimal("0.04"), (), "unknown",
        when, when,
    )  # fmt: skip
    slack, discord = unknown_notice(job, SLACK), unknown_notice(job, DISCORD)
    assert slack.startswith("⚠️ <@U1> the image for “a &lt;fox&gt; &amp; owl xxx")
    assert discord.startswith("⚠️ U1 the image for “a <fox> & owl xxx")  # not a Discord id
    assert "…”" in slack and "it may have been charged" in discord


def test_a_settled_quote_has_one_line_and_an_open_one_none() -> None:
    when = datetime(2026, 1, 1, tzinfo=UTC)
    job = ImageJob(
        "j1", "discord:1", "discord", "2", "", "3", "a fox", {}, "standard", "1024x1024",
        "openai-image", "openai", "gpt-image-1.5", Decimal("0.04"), (), "quoted", when, when,
    )  # fmt: skip
    assert outcome_line(job) is None
    assert outcome_line(job, "expired") == "⌛ This quote expired; nothing was charged."
    assert outcome_line(job, "unknown") == (
        "❓ The outcome is unknown (it may have been charged); not retried."
    )
