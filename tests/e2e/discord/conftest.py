"""The real `python -m bot` process against the fake Discord and the fake LLM providers."""

from __future__ import annotations

import asyncio
import signal
import sys
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path

from tests.e2e.conftest import bot_env
from tests.fakes.discord import FakeDiscord, discord_fake
from tests.fakes.llm_server import LLMFake

__all__ = ["discord_fake", "run_discord_bot"]


@asynccontextmanager
async def run_discord_bot(
    fake: FakeDiscord, llm: LLMFake, tmp_path: Path, **env: str
) -> AsyncIterator[Callable[[], str]]:
    """Start `python -m bot` pointed at the fakes by settings only; SIGTERM it on exit."""
    environment = bot_env(llm, tmp_path, **fake.env(), LOG_LEVEL="INFO", **env)
    fake.gateway.identified.clear()
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot",
        env=environment,
        cwd=tmp_path,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    stderr: list[bytes] = []

    async def drain() -> None:
        assert process.stderr is not None
        async for line in process.stderr:
            stderr.append(line)

    reader = asyncio.create_task(drain())
    try:
        await fake.wait_ready(30)
        yield lambda: b"".join(stderr).decode()
    finally:
        if process.returncode is None:
            process.send_signal(signal.SIGTERM)
        code = await asyncio.wait_for(process.wait(), 30)
        await asyncio.wait_for(reader, 5)
        assert code == 0, b"".join(stderr).decode()[-3000:]
