"""A store that cannot write, through the real `python -m bot`: the disk "fills" (the process's
file-size limit drops to 0, so every write to a file fails with EFBIG, as on a full disk) while
the bot runs. /chat then says the storage is failing (no provider is called, nothing is
charged), /readyz reports not ready, the log says so in one line; when the disk comes back a
probe write makes it ready again and chat works."""

from __future__ import annotations

import resource
import socket
from pathlib import Path
from typing import Any

import aiohttp

from bot.store import STORE_FAILING
from tests.e2e.discord.conftest import BotProcess, discord_env
from tests.fakes.discord import FakeDiscord
from tests.fakes.discord.payloads import text_of
from tests.fakes.llm_server import LLMFake, workers_stream


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def readyz(port: int) -> tuple[int, dict[str, Any]]:
    async with (
        aiohttp.ClientSession() as session,
        session.get(f"http://127.0.0.1:{port}/readyz") as response,
    ):
        return response.status, await response.json()


def shown(fake: FakeDiscord, text: str) -> list[dict[str, Any]]:
    return [m for m in fake.messages.values() if text in text_of(m)]


def set_file_size_limit(pid: int, limit: int) -> None:
    resource.prlimit(pid, resource.RLIMIT_FSIZE, (limit, resource.RLIM_INFINITY))


async def test_a_full_disk_is_said_reported_not_ready_and_recovered(tmp_path: Path) -> None:
    port = free_port()
    async with FakeDiscord(channels=3) as fake, LLMFake() as llm:
        env = discord_env(fake, llm, tmp_path, PORT=str(port), HOST="127.0.0.1")
        bot = await BotProcess(fake, env, tmp_path).start()
        first, second, third = fake.channel_ids
        try:
            llm.queue("workers", workers_stream(["Stored fine."]))
            await fake.slash("chat", {"prompt": "before the disk fills"}, channel=first)
            await fake.wait_until(lambda: shown(fake, "Stored fine."), 20, what="an answer")
            assert (await readyz(port))[0] == 200
            calls = len(llm.calls)

            assert bot.process is not None
            set_file_size_limit(bot.process.pid, 0)  # from now on every file write fails
            for _ in range(3):
                await fake.slash("chat", {"prompt": "while the disk is full"}, channel=second)
            await fake.wait_until(
                lambda: len(shown(fake, STORE_FAILING)) >= 3, 20, what="three refusals"
            )
            assert len(llm.calls) == calls  # nothing asked of a provider, nothing charged
            status, body = await readyz(port)
            assert (status, body["checks"]["store"]) == (503, False)
            await fake.wait_until(lambda: "store writes failing" in bot.logs(), 5, what="log")
            assert bot.logs().count("store writes failing") == 1  # one line, not one per write
            assert "Sorry, something went wrong" not in str(
                [text_of(m) for m in fake.messages.values()]
            )

            set_file_size_limit(bot.process.pid, resource.RLIM_INFINITY)
            status, body = await readyz(port)  # a probe write works again
            assert (status, body["checks"]["store"]) == (200, True)
            assert "store writes working again" in bot.logs()
            llm.queue("workers", workers_stream(["Back again."]))
            await fake.slash("chat", {"prompt": "after the disk is freed"}, channel=third)
            await fake.wait_until(lambda: shown(fake, "Back again."), 20, what="an answer")
            rows = await fake.wait_until(
                lambda: (
                    (r := bot.rows("SELECT content, status FROM messages WHERE role = 'assistant'"))
                    and all(x["status"] == "complete" for x in r)
                    and len(r) == 2
                    and r
                ),
                10,
                what="both answers stored",
            )
            assert [r["content"] for r in rows] == ["Stored fine.", "Back again."]
        finally:
            if bot.process is not None and bot.process.returncode is None:
                set_file_size_limit(bot.process.pid, resource.RLIM_INFINITY)
            await bot.stop()
        assert "Traceback" not in bot.logs(), bot.logs()[-3000:]
