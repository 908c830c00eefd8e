"""Every turn passes the same admission on Discord, through the real `python -m bot`: a
Regenerate is moderated like a new message and counted by the chat limits."""

from __future__ import annotations

from pathlib import Path

from bot.engine.admission import REFUSAL_MODERATION
from tests.e2e.discord.conftest import BotProcess, discord_env
from tests.fakes.discord import FakeDiscord, Interaction
from tests.fakes.discord.payloads import LOADING, text_of
from tests.fakes.llm_server import LLMFake, moderation_result, workers_stream

REGENERATING = "Regenerating…"


def told(fake: FakeDiscord, inter: Interaction) -> str | None:
    """What the click's private message says once it says more than 'Regenerating…'."""
    found = fake.messages.get(inter.original_id or "")
    if found is None or found["flags"] & LOADING or text_of(found) == REGENERATING:
        return None
    return str(text_of(found))


async def test_regenerate_passes_moderation_and_the_chat_limits(tmp_path: Path) -> None:
    async with FakeDiscord(channels=1) as fake, LLMFake() as llm:
        env = discord_env(
            fake,
            llm,
            tmp_path,
            MODERATION_MODEL="openai:omni-moderation-latest",
            CHAT_MESSAGES_PER_MINUTE="3",
        )
        bot = await BotProcess(fake, env, tmp_path).start()
        channel = fake.channel_ids[0]
        try:
            llm.queue("workers", workers_stream(["First answer."]))
            llm.queue("workers", workers_stream(["Second answer."]))
            await fake.slash("chat", {"prompt": "answer me"}, channel=channel)
            first = await fake.wait_until(lambda: fake.finished(channel), 20, what="the answer")
            regenerate = next(c for c in fake.custom_ids(first) if ":regenerate:" in c)
            thread = first["id"]

            llm.queue("moderation", moderation_result(flagged=True, categories=["harassment"]))
            refused = await fake.click(first["id"], regenerate)  # answer 2 of 3: a refusal
            said = await fake.wait_until(lambda: told(fake, refused), 20, what="the refusal")
            assert said == REFUSAL_MODERATION

            await fake.click(first["id"], regenerate)  # answer 3 of 3
            second = await fake.wait_until(lambda: fake.finished(thread), 20, what="an answer")
            assert text_of(second) == "Second answer."

            over = await fake.click(first["id"], regenerate)  # a fourth is over the limit
            said = await fake.wait_until(lambda: told(fake, over), 20, what="the limit")
            assert "3 messages a minute" in said
            assert len(llm.calls_to("workers")) == 2
            assert [c.body["input"] for c in llm.calls_to("moderation")] == ["answer me"] * 3
        finally:
            await bot.stop()
        assert "Traceback" not in bot.logs(), bot.logs()[-3000:]
