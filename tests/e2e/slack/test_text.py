"""Text that breaks storage is made storable at the edges, through the real `python -m bot`.

JSON may carry what no UTF-8 store takes: a lone surrogate escape (`\\ud800`) in a user's message,
an emoji's surrogate pair split between two provider events, a NUL (`\\u0000`, refused by
PostgreSQL's text). Each is answered and stored: pairs joined, lone surrogates shown as U+FFFD,
NUL dropped.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

from tests.e2e.slack.conftest import ALICE, SlackBot, launch_bot, stop_bot
from tests.e2e.slack.helpers import wait_answer
from tests.fakes.llm.scripts import raw_stream
from tests.fakes.llm_server import LLMFake, workers_stream
from tests.fakes.slack import SlackFake
from tests.pg import SUPERUSER, PgServer, server_for_tests

pytestmark = pytest.mark.asyncio(loop_scope="module")

USAGE = 'data: {"response":"","usage":{"prompt_tokens":9,"completion_tokens":2}}\n\n'


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def bot(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[SlackBot]:
    tmp = tmp_path_factory.mktemp("slack-text")
    async with SlackFake() as fake, LLMFake() as llm:
        bot = await launch_bot(llm, fake, tmp)
        try:
            yield bot
        finally:
            await stop_bot(bot)
            assert "Traceback" not in bot.output(), bot.output()[-3000:]


def stored(bot: SlackBot, role: str) -> list[Any]:
    with sqlite3.connect(bot.log.parent / "parley.db") as db:
        db.row_factory = sqlite3.Row
        query = "SELECT content, status FROM messages WHERE role = ? ORDER BY id"
        return [dict(r) for r in db.execute(query, (role,))]


async def mention(bot: SlackBot, channel: str, text: str) -> str:
    """A mention whose text is `text` as Slack's JSON carries it; its finished answer's text."""
    event = bot.sender.mention(channel, ALICE, text)
    assert (await bot.sender.event(event)).status == 200
    [reply] = await wait_answer(bot.fake, channel, event["ts"])
    return reply.text


async def test_a_lone_surrogate_in_a_message_is_answered_and_stored(bot: SlackBot) -> None:
    bot.llm.queue("workers", workers_stream(["Read it."]))
    assert await mention(bot, "C0SURROGATE", "what is \ud800 this?") == "Read it."
    sent = bot.llm.calls_to("workers")[-1].body["messages"][-1]["content"]
    assert sent == "what is \ufffd this?"
    assert stored(bot, "user")[-1] == {"content": "what is \ufffd this?", "status": "complete"}
    assert stored(bot, "assistant")[-1] == {"content": "Read it.", "status": "complete"}


async def test_an_emoji_split_across_two_provider_events_arrives_whole(bot: SlackBot) -> None:
    # 😀 is U+1F600: the JSON escapes \ud83d\ude00, here one in each event.
    split = raw_stream(
        'data: {"response":"Smile \\ud83d"}\n\n',
        'data: {"response":"\\ude00 and a lone \\udc00."}\n\n',
        USAGE,
        "data: [DONE]\n\n",
    )
    bot.llm.queue("workers", split)
    expected = "Smile \U0001f600 and a lone \ufffd."
    assert await mention(bot, "C0EMOJI", "smile for me") == expected
    assert stored(bot, "assistant")[-1] == {"content": expected, "status": "complete"}


# -- PostgreSQL ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def pg() -> Iterator[PgServer]:
    with server_for_tests("nul") as server:
        yield server


async def test_a_nul_byte_on_postgresql_is_answered_and_stored(
    pg: PgServer, tmp_path: Path
) -> None:
    asyncpg = pytest.importorskip("asyncpg")
    async with SlackFake() as fake, LLMFake() as llm:
        bot = await launch_bot(llm, fake, tmp_path, DATABASE_URL=pg.url("nul"))
        try:
            nul_reply = raw_stream(
                'data: {"response":"nul\\u0000here"}\n\n', USAGE, "data: [DONE]\n\n"
            )
            llm.queue("workers", nul_reply)
            assert await mention(bot, "C0NUL", "a\u0000b") == "nulhere"
            assert llm.calls_to("workers")[-1].body["messages"][-1]["content"] == "ab"
            conn = await asyncpg.connect(
                host="127.0.0.1", port=pg.port, user=SUPERUSER, database="nul"
            )
            try:
                rows = await conn.fetch("SELECT role, content, status FROM messages ORDER BY id")
            finally:
                await conn.close()
            assert [tuple(r) for r in rows] == [
                ("user", "ab", "complete"),
                ("assistant", "nulhere", "complete"),
            ]
        finally:
            await stop_bot(bot)
        await asyncio.sleep(0)
        assert "Traceback" not in bot.output(), bot.output()[-3000:]
