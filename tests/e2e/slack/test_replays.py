"""Replayed Slack requests do nothing: the real `python -m bot` against the Slack and LLM fakes.

A replay is the identical signed request (same body, same timestamp, so the same signature) sent
again within the 5 minutes bolt accepts it; Slack itself never sends one.
"""

from __future__ import annotations

import sqlite3
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from bot.store import Store
from tests.e2e.slack.conftest import ALICE, CHANNEL, TEAM, SlackBot, StartBot
from tests.e2e.slack.helpers import question_thread, wait_answer
from tests.fakes.clock import FakeClock
from tests.fakes.llm_server import workers_stream
from tests.fakes.slack import Message

FORM = "application/x-www-form-urlencoded"
IGNORED = "replayed request ignored"


def questions(bot: SlackBot) -> list[Message]:
    """The questions /chat quoted in the channel (each opens an answer's thread)."""
    return [m for m in bot.fake.messages.values() if m.is_bot and not m.thread_ts]


async def replay_settled(bot: SlackBot, calls: int) -> None:
    """Until the bot says it ignored the replay, or the replay made a provider call beyond
    `calls` (what the old code did); the test's assertions tell which."""
    await bot.fake.wait_for(
        lambda: IGNORED in bot.output() or len(bot.llm.calls_to("workers")) > calls
    )


async def test_a_replayed_chat_gets_one_answer_and_a_fresh_one_is_answered(bot: SlackBot) -> None:
    sender = bot.sender
    bot.llm.queue("workers", workers_stream(["Said once."], delay=0.2))
    bot.llm.queue("workers", workers_stream(["Asked anew."]))
    body = sender.command_body("/chat", "say it once", user=ALICE, channel=CHANNEL)
    signed_at = int(time.time())
    first = await sender.post(body, FORM, timestamp=signed_at)
    replay = await sender.post(body, FORM, timestamp=signed_at)
    assert (first.status, replay.status) == (200, 200)  # the replay is acknowledged, like Slack
    await replay_settled(bot, 1)
    [reply] = await wait_answer(bot.fake, CHANNEL, question_thread(bot.fake))
    assert reply.text == "Said once."
    assert len(bot.llm.calls_to("workers")) == 1 and len(questions(bot)) == 1

    # The same text typed again is a new request (a new timestamp and signature): answered.
    fresh = await sender.command("/chat", "say it once", user=ALICE, channel=CHANNEL)
    assert fresh.status == 200
    await bot.fake.wait_for(lambda: len(questions(bot)) == 2)
    [again] = await wait_answer(bot.fake, CHANNEL, question_thread(bot.fake, 1))
    assert again.text == "Asked anew."
    assert len(bot.llm.calls_to("workers")) == 2
    assert len(questions(bot)) == 2
    assert bot.output().count(IGNORED) == 1


async def test_a_replayed_regenerate_click_makes_one_new_answer(start_bot: StartBot) -> None:
    bot = await start_bot(SLACK_NATIVE_STREAMING="false")
    fake, sender = bot.fake, bot.sender
    bot.llm.queue("workers", workers_stream(["First answer."]))
    bot.llm.queue("workers", workers_stream(["Second answer."], delay=0.2))
    bot.llm.queue("workers", workers_stream(["A third, paid for twice."]))
    await sender.command("/chat", "answer me", user=ALICE, channel=CHANNEL)
    await fake.wait_for(lambda: questions(bot))
    thread = question_thread(fake)
    [reply] = await wait_answer(fake, CHANNEL, thread)
    regenerate = next(b for b in reply.buttons() if b["action_id"] == "parley_regenerate")

    body = sender.action_body(
        regenerate, user=ALICE, channel=CHANNEL, message_ts=reply.ts, thread_ts=thread
    )
    signed_at = int(time.time())
    clicks = [await sender.post(body, FORM, timestamp=signed_at) for _ in range(2)]
    assert [c.status for c in clicks] == [200, 200]
    await replay_settled(bot, 2)
    replies = await wait_answer(fake, CHANNEL, thread, count=2)
    assert [r.text for r in replies] == ["First answer.", "Second answer."]
    assert len(bot.llm.calls_to("workers")) == 2
    assert bot.output().count(IGNORED) == 1


async def test_a_socket_mode_command_delivered_twice_is_answered_once(
    start_bot: StartBot,
) -> None:
    bot = await start_bot(SLACK_APP_TOKEN="xapp-1-test-app-token", SLACK_SIGNING_SECRET="")
    fake = bot.fake
    await fake.wait_socket()
    bot.llm.queue("workers", workers_stream(["Over the socket, once."], delay=0.2))
    bot.llm.queue("workers", workers_stream(["A second, paid answer."]))
    payload = {
        "token": "legacy",
        "team_id": TEAM,
        "channel_id": CHANNEL,
        "user_id": ALICE,
        "command": "/chat",
        "text": "via socket",
        "api_app_id": "A0PARLEY",
        "response_url": fake.new_response_url(CHANNEL, ALICE),
        "trigger_id": "7.8.9",
    }
    # No signature on a socket: the trigger_id, one per user action, tells a redelivery apart.
    envelopes = [await fake.send_envelope("slash_commands", payload) for _ in range(2)]
    for envelope in envelopes:
        await fake.wait_ack(envelope)  # both acknowledged
    await replay_settled(bot, 1)
    [reply] = await wait_answer(fake, CHANNEL, question_thread(fake))
    assert reply.text == "Over the socket, once."
    assert len(bot.llm.calls_to("workers")) == 1 and len(questions(bot)) == 1
    assert bot.output().count(IGNORED) == 1


async def test_claims_older_than_ten_minutes_are_pruned_at_start(
    start_bot: StartBot, tmp_path: Path
) -> None:
    db = tmp_path / "parley.db"  # the database start_bot's process uses
    # Claims written 11 minutes ago and just now, as a replica sharing the database would.
    for age, event_id in ((11, "T0001:C0GENERAL:1.000001"), (0, "request:fresh")):
        clock = FakeClock(wall_start=datetime.now(UTC) - timedelta(minutes=age))
        store = await Store.open(f"sqlite+aiosqlite:///{db}", clock=clock)
        try:
            assert await store.claim_event("slack", event_id)
        finally:
            await store.close()
    bot = await start_bot()  # it prunes at start, then every minute

    def claims() -> set[str]:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=10) as conn:
            return {row[0] for row in conn.execute("SELECT event_id FROM processed_events")}

    await bot.fake.wait_for(lambda: "T0001:C0GENERAL:1.000001" not in claims())
    assert "request:fresh" in claims()
