"""At LOG_LEVEL=DEBUG the real process's log holds no credential: not the bot token, not an
interaction token (a credential for 15 minutes, carried in gateway payloads and webhook paths),
not a provider key; also when the libraries are asked to log at DEBUG themselves."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.e2e.discord.conftest import BotProcess, discord_env
from tests.fakes.discord import FakeDiscord
from tests.fakes.llm_server import LLMFake, workers_stream


@pytest.mark.parametrize("libraries", ["", "DEBUG"], ids=["default", "libraries-at-debug"])
async def test_a_debug_log_of_a_chat_and_a_click_holds_no_token_or_key(
    tmp_path: Path, libraries: str
) -> None:
    async with FakeDiscord(channels=2) as fake, LLMFake() as llm:
        env = discord_env(fake, llm, tmp_path) | {"LOG_LEVEL": "DEBUG", "LOG_FORMAT": "json"}
        if libraries:
            env["LOG_LEVEL_LIBRARIES"] = libraries
        bot = await BotProcess(fake, env, tmp_path).start()
        try:
            llm.queue("workers", workers_stream(["Short ", "answer."]))
            channel = fake.channel_ids[0]
            chat = await fake.slash("chat", {"prompt": "Hello there"}, channel=channel)
            reply = await fake.wait_until(lambda: fake.finished(channel), 20, what="the reply")
            regenerate = next(
                c for c in fake.custom_ids(reply) if c.startswith("parley:regenerate:")
            )
            llm.queue("workers", workers_stream(["Another."]))
            click = await fake.click(reply["id"], regenerate, user="alice")
            await fake.wait_until(lambda: len(llm.calls_to("workers")) == 2, 20, what="regen")
        finally:
            await bot.stop()
        log = bot.logs()
        # By default discord.py keeps its payloads to itself; asked to, it logs them, and the
        # tokens in them are redacted by key.
        assert ('"level": "debug", "logger": "discord.gateway"' in log) == bool(libraries)
        assert ("'token': '[REDACTED]'" in log) == bool(libraries)
        for secret in (fake.token, chat.token, click.token, llm.cloudflare_token):
            assert secret not in log
            assert secret[:16] not in log
