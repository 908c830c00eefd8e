from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import pytest_asyncio

from tests.fakes.images.server import ImageFake
from tests.fakes.images.support import JumpClock


@pytest_asyncio.fixture
async def fake() -> AsyncIterator[ImageFake]:
    async with ImageFake() as server:
        yield server


@pytest.fixture
def clock() -> JumpClock:
    return JumpClock()
