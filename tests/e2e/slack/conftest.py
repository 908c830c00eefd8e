"""The real `python -m bot` process on Slack, against the Slack fake and the LLM fake."""

from __future__ import annotations

import asyncio
import signal
import socket
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import pytest
import pytest_asyncio

from tests.e2e.conftest import bot_env
from tests.fakes.llm_server import LLMFake, llm_fake
from tests.fakes.slack import SlackFake, SlackSender

__all__ = ["llm_fake"]

SECRET = "8f742231b10e8888abcd99yyyzzz85a5"
TEAM = "T0001"
CHANNEL = "C0GENERAL"
ALICE = "U0ALICE"
BOB = "U0BOB"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class SlackBot:
    process: asyncio.subprocess.Process
    fake: SlackFake
    llm: LLMFake
    port: int
    log: Path
    sender: SlackSender
    killed: bool = False

    @property
    def events_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/slack/events"

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    async def kill(self) -> None:
        """SIGKILL: the process dies at once, as in a crash (no shutdown, no cleanup)."""
        self.killed = True
        self.process.kill()
        await self.process.wait()


async def _wait_healthy(port: int, process: asyncio.subprocess.Process, log: Path) -> None:
    deadline = time.monotonic() + 30
    async with aiohttp.ClientSession() as session:
        while time.monotonic() < deadline:
            if process.returncode is not None:
                raise AssertionError(f"bot exited {process.returncode}:\n{_read(log)}")
            try:
                async with session.get(f"http://127.0.0.1:{port}/healthz") as resp:
                    if resp.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.05)
    raise AssertionError(f"bot never became healthy:\n{_read(log)}")


def _read(path: Path) -> str:
    return path.read_text(errors="replace")


StartBot = Callable[..., Awaitable[SlackBot]]


@pytest_asyncio.fixture
async def slack_fake() -> AsyncIterator[SlackFake]:
    async with SlackFake() as fake:
        yield fake


async def launch_bot(
    llm: LLMFake, fake: SlackFake, tmp_path: Path, name: str = "bot", **overrides: str
) -> SlackBot:
    """Start `python -m bot` on Slack over HTTP against the fakes (env overrides as keywords)."""
    port = free_port()
    env = bot_env(llm, tmp_path) | {
        "SLACK_BOT_TOKEN": fake.bot_token,
        "SLACK_SIGNING_SECRET": SECRET,
        "SLACK_API_URL": fake.api_url,
        "PORT": str(port),
        "HOST": "127.0.0.1",
        "LOG_LEVEL": "INFO",
    }
    env |= overrides
    env = {k: v for k, v in env.items() if v != ""}
    log = tmp_path / f"{name}.log"
    with log.open("wb") as out:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "bot",
            env=env,
            cwd=tmp_path,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=out,
            stderr=asyncio.subprocess.STDOUT,
        )
    sender = SlackSender(f"http://127.0.0.1:{port}/slack/events", SECRET, fake, TEAM)
    await sender.__aenter__()
    bot = SlackBot(process, fake, llm, port, log, sender)
    try:
        await _wait_healthy(port, process, log)
    except BaseException:
        await stop_bot(bot)
        raise
    return bot


async def stop_bot(bot: SlackBot) -> None:
    """SIGTERM, then wait (SIGKILL after 20 s); fails the test when the bot exited badly."""
    await bot.sender.__aexit__()
    if bot.process.returncode is None:
        bot.process.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(bot.process.wait(), 20)
        except TimeoutError:
            bot.process.kill()
            await bot.process.wait()
    if not bot.killed and bot.process.returncode not in (0, -signal.SIGTERM):
        pytest.fail(f"bot exited {bot.process.returncode}:\n{bot.output()}")


@pytest_asyncio.fixture
async def start_bot(
    llm_fake: LLMFake, slack_fake: SlackFake, tmp_path: Path
) -> AsyncIterator[StartBot]:
    """Start the bot (env overrides as keyword arguments); it is stopped with SIGTERM after."""
    started: list[SlackBot] = []

    async def start(**overrides: str) -> SlackBot:
        bot = await launch_bot(llm_fake, slack_fake, tmp_path, f"bot-{len(started)}", **overrides)
        started.append(bot)
        return bot

    yield start
    for bot in started:
        await stop_bot(bot)


@pytest_asyncio.fixture
async def bot(start_bot: StartBot) -> SlackBot:
    return await start_bot()
