"""The real `python -m bot` process against the fake Discord and the fake LLM providers.

`BotProcess` starts, stops (SIGTERM), kills (SIGKILL) and restarts the bot on one SQLite file.
Modules share one process where isolation allows (fresh channels per test): see the module
fixtures in test_chat.py and test_images.py.
"""

from __future__ import annotations

import asyncio
import signal
import sqlite3
import sys
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from tests.e2e.conftest import bot_env
from tests.fakes.discord import FakeDiscord, discord_fake
from tests.fakes.llm_server import LLMFake

__all__ = ["BotProcess", "discord_fake", "run_discord_bot"]


class BotProcess:
    """One `python -m bot` at a time, pointed at the fakes by environment variables only."""

    def __init__(self, fake: FakeDiscord, env: dict[str, str], cwd: Path) -> None:
        self.fake = fake
        self.env = env
        self.cwd = cwd
        self.process: asyncio.subprocess.Process | None = None
        self._stderr: list[bytes] = []
        self._reader: asyncio.Task[None] | None = None

    @property
    def db(self) -> Path:
        return Path(self.env["DATABASE_URL"].removeprefix("sqlite+aiosqlite:///"))

    def logs(self) -> str:
        return b"".join(self._stderr).decode(errors="replace")

    async def start(self) -> BotProcess:
        self.fake.gateway.identified.clear()
        self._stderr = []
        self.process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "bot",
            env=self.env,
            cwd=self.cwd,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE,
        )
        self._reader = asyncio.create_task(self._drain(self.process))
        try:
            await self.fake.wait_ready(30)
        except TimeoutError:
            await self.kill()
            raise AssertionError(f"the bot never connected:\n{self.logs()[-3000:]}") from None
        return self

    async def _drain(self, process: asyncio.subprocess.Process) -> None:
        assert process.stderr is not None
        async for line in process.stderr:
            self._stderr.append(line)

    async def stop(self) -> None:
        """SIGTERM, as an operator stops it; it must exit 0."""
        process = self.process
        if process is None:
            return
        if process.returncode is None:
            process.send_signal(signal.SIGTERM)
        try:
            code = await asyncio.wait_for(process.wait(), 30)
        except TimeoutError:
            process.kill()
            await process.wait()
            raise AssertionError(f"the bot ignored SIGTERM:\n{self.logs()[-3000:]}") from None
        await self._finish()
        assert code == 0, self.logs()[-3000:]

    async def kill(self) -> None:
        """SIGKILL: a crash, with no chance to clean up."""
        process = self.process
        if process is None:
            return
        if process.returncode is None:
            process.kill()
        await asyncio.wait_for(process.wait(), 30)
        await self._finish()
        await self.fake.gateway.close()  # the socket is gone; the fake notices at once

    async def _finish(self) -> None:
        if self._reader is not None:
            await asyncio.wait_for(self._reader, 5)
        self.process = None

    def rows(self, sql: str, *params: Any) -> list[sqlite3.Row]:
        """Read the bot's SQLite file directly, as an operator would."""
        with sqlite3.connect(f"file:{self.db}?mode=ro", uri=True, timeout=10) as conn:
            conn.row_factory = sqlite3.Row
            return list(conn.execute(sql, params))


def discord_env(fake: FakeDiscord, llm: LLMFake, tmp_path: Path, **env: str) -> dict[str, str]:
    return bot_env(llm, tmp_path, **fake.env(), LOG_LEVEL="INFO", **env)


@asynccontextmanager
async def run_discord_bot(
    fake: FakeDiscord, llm: LLMFake, tmp_path: Path, **env: str
) -> AsyncIterator[Callable[[], str]]:
    """Start `python -m bot` pointed at the fakes by settings only; SIGTERM it on exit."""
    bot = await BotProcess(fake, discord_env(fake, llm, tmp_path, **env), tmp_path).start()
    try:
        yield bot.logs
    finally:
        await bot.stop()


class Channels:
    """Hands out channels no earlier test in the module has used."""

    def __init__(self, fake: FakeDiscord) -> None:
        self._ids: Iterator[str] = iter(fake.channel_ids)

    def take(self, n: int | None = None) -> Any:
        if n is None:
            return next(self._ids)
        return [next(self._ids) for _ in range(n)]


def turn_of(custom_id: str) -> int:
    return int(custom_id.rsplit(":", 1)[1])
