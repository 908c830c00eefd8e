"""Crashes and replicas on Slack, through real `python -m bot` processes on one SQLite file (and
one PostgreSQL): a reply cut off by `kill -9` is finished by the next start, billed for what it
generated; a replica that starts leaves another's live reply alone; a Stop that reaches another
replica stops the reply there."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.slack.conftest import ALICE, CHANNEL, SlackBot, StartBot
from tests.e2e.slack.helpers import finished, question_thread
from tests.fakes.llm_server import workers_stream
from tests.fakes.slack import Message, SlackFake
from tests.pg import SUPERUSER, PgServer, server_for_tests

NOTICE = "_(reply cut off by a restart)_"
WORDS = [f"word{i} " for i in range(80)]


def rows(bot: SlackBot, sql: str, *params: Any) -> list[sqlite3.Row]:
    """Read the bot's SQLite file as an operator would (read-only, beside the running bot)."""
    db = Path(bot.log).parent / "parley.db"
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=10) as conn:
        conn.row_factory = sqlite3.Row
        return list(conn.execute(sql, params))


def the_turn(bot: SlackBot) -> sqlite3.Row | None:
    found = rows(bot, "SELECT * FROM messages WHERE role = 'assistant' ORDER BY id")
    return found[-1] if found else None


def stop_buttons(fake: SlackFake, thread: str) -> list[Message]:
    return [
        m
        for m in fake.thread(CHANNEL, thread)
        if any(b.get("action_id") == "parley_stop" for b in m.buttons())
    ]


async def start_a_long_reply(bot: SlackBot) -> tuple[str, sqlite3.Row]:
    """/chat with a slow 80-word answer; returns its thread once the store has saved some of
    what the reply shows (the turn's text and its messages)."""
    bot.llm.queue("workers", workers_stream(WORDS, delay=0.1))
    await bot.sender.command("/chat", "Tell me a long story", user=ALICE, channel=CHANNEL)
    fake = bot.fake
    await fake.wait_for(lambda: fake.calls_to("chat.postMessage"))
    thread = question_thread(fake)

    def saved() -> sqlite3.Row | None:
        turn = the_turn(bot)
        if turn is None or not turn["content"] or not turn["reply_refs"]:
            return None
        return turn

    await fake.wait_for(saved, 20)
    turn = saved()
    assert turn is not None and turn["status"] == "streaming"
    return thread, turn


@pytest.mark.parametrize("native", [True, False], ids=["native-stream", "post-and-edit"])
async def test_a_reply_killed_mid_stream_is_finished_by_the_next_start_and_billed(
    start_bot: StartBot, native: bool
) -> None:
    first = await start_bot()
    fake = first.fake
    fake.native_streaming = native
    thread, saved = await start_a_long_reply(first)
    await first.kill()  # kill -9: nothing finishes the reply
    [reply] = [m for m in fake.bot_replies(CHANNEL, thread) if m.text.startswith("word0")]
    assert reply.streaming == native and not finished(reply)
    [note] = stop_buttons(fake, thread)  # Stop still offered, by a process that is gone
    stop = next(b for b in note.buttons() if b["action_id"] == "parley_stop")

    second = await start_bot()  # same database; no provider is called again
    await fake.wait_for(lambda: finished(fake.messages[(CHANNEL, reply.ts)]), 20)
    done = fake.messages[(CHANNEL, reply.ts)]
    assert not done.streaming
    assert done.text.endswith(NOTICE)
    kept = done.text.removesuffix(NOTICE).strip()
    assert kept.startswith("word0 word1") and "word79" not in kept
    assert not stop_buttons(fake, thread)  # no Stop left anywhere in the thread
    assert len(second.llm.calls_to("workers")) == 1

    turn = the_turn(second)
    assert turn is not None and turn["id"] == saved["id"]
    assert (turn["status"], turn["finish_reason"]) == ("interrupted", "restart")
    assert turn["content"].strip() == kept  # what the thread shows is what is stored
    assert turn["completion_tokens"] > 0 and turn["prompt_tokens"] > 0
    assert turn["cost"] is not None and turn["cost"] > 0
    [billed] = rows(second, "SELECT * FROM usage_ledger WHERE message_id = ?", turn["id"])
    assert (billed["user_id"], billed["tenant_id"]) == (ALICE, "slack:T0001")
    assert billed["completion_tokens"] == turn["completion_tokens"]
    assert "turn interrupted by restart" in second.output()

    # A Stop clicked on a stale copy of the old message says what happened.
    await second.sender.click(
        stop, user=ALICE, channel=CHANNEL, message_ts=note.ts, thread_ts=thread
    )
    await fake.wait_for(lambda: any("cut off by a restart" in e.text for e in fake.ephemerals))


async def test_a_replica_that_starts_leaves_another_replicas_live_reply_alone(
    start_bot: StartBot,
) -> None:
    lease = {"TURN_LEASE_SECONDS": "1.5"}  # renewed every 0.5 s, swept every 0.75 s
    running = await start_bot(**lease)
    fake = running.fake
    thread, saved = await start_a_long_reply(running)
    other = await start_bot(**lease)  # same database, its own process
    assert the_turn(other)["status"] == "streaming"  # type: ignore[index]

    replies = fake.bot_replies(CHANNEL, thread)
    await fake.wait_for(lambda: any(finished(m) for m in fake.bot_replies(CHANNEL, thread)), 30)
    [reply] = [m for m in fake.bot_replies(CHANNEL, thread) if finished(m)]
    assert reply.text == "".join(WORDS).strip()  # whole, by the replica that ran it
    assert not any(NOTICE in text for m in replies for text in m.edits)
    turn = the_turn(other)
    assert turn is not None and turn["id"] == saved["id"]
    assert (turn["status"], turn["owner"]) == ("complete", saved["owner"])
    assert "turn interrupted by restart" not in other.output()
    assert "turn interrupted by restart" not in running.output()


async def stop_on_the_other_replica(running: SlackBot, other: SlackBot) -> str:
    """A long reply on `running`; its asker's Stop reaches `other` (a load balancer's choice):
    the reply stops at once, as if the click had reached the process that runs it."""
    fake = running.fake
    running.llm.queue("workers", workers_stream(WORDS, delay=0.1))
    await running.sender.command("/chat", "Tell me a long story", user=ALICE, channel=CHANNEL)
    await fake.wait_for(lambda: fake.calls_to("chat.postMessage"))
    thread = question_thread(fake)
    await fake.wait_for(lambda: stop_buttons(fake, thread) and fake.bot_replies(CHANNEL, thread))
    await fake.wait_for(lambda: len(fake.bot_replies(CHANNEL, thread)[0].text.split()) >= 5)
    [holder] = stop_buttons(fake, thread)
    stop = next(b for b in holder.buttons() if b["action_id"] == "parley_stop")
    clicked = time.monotonic()
    sent = await other.sender.click(
        stop, user=ALICE, channel=CHANNEL, message_ts=holder.ts, thread_ts=thread
    )
    assert sent.status == 200
    await fake.wait_for(lambda: any(finished(m) for m in fake.bot_replies(CHANNEL, thread)), 10)
    stopped_at = time.monotonic()
    [reply] = [m for m in fake.bot_replies(CHANNEL, thread) if finished(m)]
    assert reply.text.endswith("_(stopped)_")
    assert len(reply.text.split()) < len(WORDS)  # cut short, not run to its end
    shown = [
        c for method in ("chat.update", "chat.appendStream") for c in fake.calls_to(method)
        if c.args.get("ts") == reply.ts and clicked < c.at <= stopped_at
    ]  # fmt: skip
    assert len(shown) <= 2  # an edit already on its way, then the stopped reply's last one
    assert not stop_buttons(fake, thread)
    assert not [e for e in fake.ephemerals if e.user == ALICE]  # no "already finished"
    assert len(running.llm.calls_to("workers")) == 1  # one fake, shared: no second answer
    return thread


@pytest.mark.parametrize("native", [True, False], ids=["native-stream", "post-and-edit"])
async def test_a_stop_clicked_on_another_replica_stops_the_reply_within_one_edit(
    start_bot: StartBot, native: bool
) -> None:
    env = {} if native else {"SLACK_NATIVE_STREAMING": "false"}
    running = await start_bot(**env)
    other = await start_bot(**env)  # same database, its own process
    await stop_on_the_other_replica(running, other)
    turn = the_turn(other)
    assert turn is not None
    assert (turn["status"], turn["finish_reason"]) == ("interrupted", "cancelled")
    assert turn["owner"] is not None and turn["stop_requested_at"] is not None


@pytest.fixture(scope="module")
def pg() -> Iterator[PgServer]:
    with server_for_tests("replicas") as server:
        yield server


async def test_a_stop_clicked_on_another_replica_over_postgresql_stops_the_reply(
    start_bot: StartBot, pg: PgServer
) -> None:
    asyncpg = pytest.importorskip("asyncpg")
    env = {"DATABASE_URL": pg.url("replicas"), "SLACK_NATIVE_STREAMING": "false"}
    running = await start_bot(**env)
    other = await start_bot(**env)
    await stop_on_the_other_replica(running, other)
    conn = await asyncpg.connect(
        host="127.0.0.1", port=pg.port, user=SUPERUSER, database="replicas"
    )
    try:
        turn = await conn.fetchrow(
            "SELECT * FROM messages WHERE role = 'assistant' ORDER BY id DESC LIMIT 1"
        )
    finally:
        await conn.close()
    assert (turn["status"], turn["finish_reason"]) == ("interrupted", "cancelled")
    assert turn["stop_requested_at"] is not None


async def test_a_chat_limit_holds_across_replicas_for_messages_sent_at_once(
    start_bot: StartBot,
) -> None:
    """Four questions at once, two to each replica, under CHAT_MESSAGES_PER_MINUTE=2: two are
    answered and two refused, whichever replica each reached."""
    env = {"CHAT_MESSAGES_PER_MINUTE": "2", "SLACK_NATIVE_STREAMING": "false"}
    bots = [await start_bot(**env), await start_bot(**env)]
    fake = bots[0].fake
    for _ in range(4):
        bots[0].llm.queue("workers", workers_stream(["Answered."], delay=0.05))
    await asyncio.gather(
        *(
            bots[i % 2].sender.command("/chat", f"question {i}", user=ALICE, channel=CHANNEL)
            for i in range(4)
        )
    )

    def settled() -> bool:
        answered = [m for m in fake.messages.values() if finished(m)]
        refused = [e for e in fake.ephemerals if "Slow down" in e.text]
        return len(answered) + len(refused) >= 4

    await fake.wait_for(settled, 20)
    answered = [m for m in fake.messages.values() if finished(m)]
    refused = [e for e in fake.ephemerals if e.user == ALICE and "Slow down" in e.text]
    assert (len(answered), len(refused)) == (2, 2)
    assert len(bots[0].llm.calls_to("workers")) == 2
