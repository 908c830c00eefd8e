"""Run the real `python -m bot` process against the local fakes."""

from __future__ import annotations

import asyncio
import os
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.fakes.llm_server import LLMFake, llm_fake
from tests.support import env_for

__all__ = ["llm_fake"]

# Only what a process needs to run: no provider keys or tokens leak in from the machine.
_PASSTHROUGH = ("PATH", "HOME", "LANG", "LC_ALL", "SYSTEMROOT", "TMPDIR")


@dataclass
class Result:
    code: int
    stdout: str
    stderr: str


def bot_env(fake: LLMFake, tmp_path: Path, **overrides: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k in _PASSTHROUGH}
    env |= env_for(fake)
    env |= {
        "DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'parley.db'}",
        "PYTHONIOENCODING": "utf-8",
        "PYTHONUNBUFFERED": "1",
    }
    return env | overrides


async def run_bot(*args: str, env: dict[str, str], cwd: Path) -> Result:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot",
        *args,
        env=env,
        cwd=cwd,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), 30)
    assert process.returncode is not None
    return Result(process.returncode, out.decode(), err.decode())


@pytest.fixture
def env(llm_fake: LLMFake, tmp_path: Path) -> dict[str, str]:
    return bot_env(llm_fake, tmp_path)
