"""Start-up: `python -m bot --help` wall time, and process start to ready against local fakes.

Targets (issue 7): --help under 300 ms; start to ready under 2 s, on Slack (HTTP mode: /readyz
answers 200 once the store is migrated and the web server is up) and on Discord (/readyz answers
200 once the gateway session is up), each against its fake.
"""

from __future__ import annotations

import asyncio
import os
import socket
import sys
import tempfile
import time
from pathlib import Path

import httpx

from bench.common import median, percentile, row, verdict
from tests.fakes.discord import FakeDiscord
from tests.fakes.llm_server import LLMFake
from tests.fakes.slack.server import SlackFake
from tests.support import env_for

RUNS = 15


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _base_env() -> dict[str, str]:
    keep = ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR")
    return {k: v for k, v in os.environ.items() if k in keep}


async def _help_once(env: dict[str, str]) -> float:
    started = time.perf_counter()
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot",
        "--help",
        env=env,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )
    await process.wait()
    return (time.perf_counter() - started) * 1000


async def _ready_once(env: dict[str, str], port: int) -> float:
    started = time.perf_counter()
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot",
        env=env,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )
    try:
        async with httpx.AsyncClient() as client:
            while True:
                try:
                    answer = await client.get(f"http://127.0.0.1:{port}/readyz", timeout=1)
                    if answer.status_code == 200:
                        return (time.perf_counter() - started) * 1000
                except httpx.TransportError:
                    pass
                if process.returncode is not None:
                    raise RuntimeError("the bot exited before it was ready")
                await asyncio.sleep(0.01)
    finally:
        process.terminate()
        await process.wait()


async def main() -> bool:
    print("Start-up")
    helps = [await _help_once(_base_env()) for _ in range(RUNS)]
    ok_help = median(helps) < 300
    row(
        "python -m bot --help: median / p90 ms",
        f"{median(helps):.0f} / {percentile(helps, 90):.0f}",
        "< 300 ms",
        verdict(ok_help),
    )
    ok_ready = True
    async with LLMFake() as llm, SlackFake() as slack, FakeDiscord() as discord:
        platforms = {
            "Slack HTTP": {
                "SLACK_BOT_TOKEN": slack.bot_token,
                "SLACK_SIGNING_SECRET": "bench-signing-secret",
                "SLACK_API_URL": slack.api_url,
            },
            # Ready once the gateway session is up (READY received).
            "Discord": discord.env(),
        }
        for name, platform_env in platforms.items():
            readies = []
            with tempfile.TemporaryDirectory() as tmp:
                for run in range(RUNS // 3):
                    port = _free_port()
                    env = _base_env() | env_for(llm) | platform_env
                    env |= {
                        "PORT": str(port),
                        "HOST": "127.0.0.1",
                        # a fresh database each time: the first start also runs every migration
                        "DATABASE_URL": f"sqlite+aiosqlite:///{Path(tmp) / f'ready{run}.db'}",
                    }
                    readies.append(await _ready_once(env, port))
            good = median(readies) < 2000
            ok_ready &= good
            row(
                f"start to ready ({name}, fresh SQLite): median / max ms",
                f"{median(readies):.0f} / {max(readies):.0f}",
                "< 2000 ms",
                verdict(good),
            )
    return ok_help and ok_ready


if __name__ == "__main__":
    sys.exit(0 if asyncio.run(main()) else 1)
