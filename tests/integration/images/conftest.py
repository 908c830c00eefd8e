from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio

from bot.store import Store
from tests.fakes.images.server import ImageFake
from tests.fakes.images.support import JumpClock


@pytest_asyncio.fixture
async def fake() -> AsyncIterator[ImageFake]:
    async with ImageFake() as server:
        yield server


@pytest.fixture
def clock() -> JumpClock:
    return JumpClock()


@pytest.fixture
def db_url(tmp_path: Path) -> str:
    return f"sqlite+aiosqlite:///{tmp_path / 'parley.db'}"


@pytest_asyncio.fixture
async def store(db_url: str, clock: JumpClock) -> AsyncIterator[Store]:
    opened = await Store.open(db_url, clock=clock)
    yield opened
    await opened.close()
