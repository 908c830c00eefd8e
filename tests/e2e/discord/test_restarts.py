"""A reply cut off by `kill -9` on Discord, finished by the next start of the real process: the
saved text in the messages that showed it, the restart notice, Regenerate, and the bill."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.e2e.discord.conftest import BotProcess, discord_env
from tests.fakes.discord import FakeDiscord
from tests.fakes.discord.payloads import text_of
from tests.fakes.llm_server import LLMFake, workers_stream

NOTICE = "_(reply cut off by a restart)_"
PARAGRAPHS = [f"Paragraph {i}: " + "lorem ipsum dolor sit amet " * 3 + "\n\n" for i in range(60)]


def thread_of(fake: FakeDiscord, channel: str) -> str | None:
    starters = [m["id"] for m in fake.bot_messages(channel) if m["id"] in fake.channels]
    return starters[-1] if starters else None


def reply_messages(fake: FakeDiscord, channel: str) -> list[dict[str, Any]]:
    """A /chat's reply: the thread's starter, then the bot's messages in the thread."""
    thread = thread_of(fake, channel)
    assert thread is not None
    return [fake.messages[thread], *fake.bot_messages(thread)]


def buttons(messages: list[dict[str, Any]]) -> list[str]:
    return [cid for m in messages for cid in FakeDiscord.custom_ids(m)]


async def test_a_two_message_reply_killed_mid_stream_is_finished_by_the_next_start(
    tmp_path: Path,
) -> None:
    async with FakeDiscord(channels=2) as fake, LLMFake() as llm:
        bot = BotProcess(fake, discord_env(fake, llm, tmp_path), tmp_path)
        await bot.start()
        llm.queue("workers", workers_stream(PARAGRAPHS, delay=0.08))
        channel = fake.channel_ids[0]
        await fake.slash("chat", {"prompt": "Write me a long essay"}, channel=channel)

        def saved_two_messages() -> Any:
            found = bot.rows("SELECT * FROM messages WHERE role = 'assistant'")
            refs = found[0]["reply_refs"] if found else None
            return found[0] if refs and refs.count("],") >= 1 else None

        saved = await fake.wait_until(saved_two_messages, 30, what="two messages saved")
        await bot.kill()
        before = reply_messages(fake, channel)
        assert len(before) == 2 and any(c.startswith("parley:stop:") for c in buttons(before))

        await bot.start()  # the same database; the provider is not called again
        done = await fake.wait_until(
            lambda: (m := reply_messages(fake, channel)) and fake.finished(m[-1]["channel_id"]),
            20,
            what="the reply finished after the restart",
        )
        after = reply_messages(fake, channel)
        assert [m["id"] for m in after] == [m["id"] for m in before]  # edited, nothing posted
        assert done["id"] == after[-1]["id"] and text_of(done).endswith(NOTICE)
        assert not any(c.startswith("parley:stop:") for c in buttons(after))
        assert buttons(after) == [f"parley:regenerate:{saved['id']}"]
        shown = " ".join(text_of(m) for m in after).removesuffix(NOTICE)
        assert shown.startswith("Paragraph 0:") and "Paragraph 59:" not in shown

        (turn,) = bot.rows("SELECT * FROM messages WHERE role = 'assistant'")
        assert (turn["status"], turn["finish_reason"]) == ("interrupted", "restart")
        assert " ".join(turn["content"].split()) == " ".join(shown.split())
        assert turn["completion_tokens"] > 0 and turn["cost"] is not None
        (billed,) = bot.rows("SELECT * FROM usage_ledger WHERE message_id = ?", turn["id"])
        assert billed["completion_tokens"] == turn["completion_tokens"]
        assert len(llm.calls_to("workers")) == 1
        await bot.stop()
        assert "Traceback" not in bot.logs()


async def test_a_reply_killed_before_its_first_text_shows_the_notice_in_its_placeholder(
    tmp_path: Path,
) -> None:
    async with FakeDiscord(channels=2) as fake, LLMFake() as llm:
        bot = BotProcess(fake, discord_env(fake, llm, tmp_path), tmp_path)
        await bot.start()
        slow = workers_stream(["Too late."], delay=30.0)  # the provider never gets to answer
        llm.queue("workers", slow)
        channel = fake.channel_ids[0]
        await fake.slash("chat", {"prompt": "Are you there?"}, channel=channel)
        await fake.wait_until(
            lambda: (
                thread_of(fake, channel)
                and bot.rows("SELECT id FROM messages WHERE status = 'streaming'")
            ),
            20,
            what="the turn running in its thread",
        )
        await bot.kill()
        (placeholder,) = reply_messages(fake, channel)
        assert text_of(placeholder) == "…"

        await bot.start()
        await fake.wait_until(lambda: fake.finished(channel), 20, what="the placeholder finished")
        (after,) = reply_messages(fake, channel)
        assert after["id"] == placeholder["id"] and text_of(after) == NOTICE
        (turn,) = bot.rows("SELECT * FROM messages WHERE role = 'assistant'")
        assert (turn["status"], turn["content"]) == ("interrupted", "")
        assert bot.rows("SELECT * FROM usage_ledger") == []  # no provider answered: no charge
        await bot.stop()
