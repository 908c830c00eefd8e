"""The benchmark's network between the bot and a platform fake: half a round trip each way."""

from __future__ import annotations

from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import make_mocked_request

from tests.fakes import network


async def test_each_request_waits_half_a_round_trip_each_way(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    events: list[Any] = []

    async def sleep(seconds: float) -> None:
        events.append(seconds)

    async def handler(request: web.Request) -> web.StreamResponse:
        events.append("handled")
        return web.Response(text="ok")

    monkeypatch.setattr(network.asyncio, "sleep", sleep)
    delay = network.round_trip(lambda: 0.1)
    response = await delay(make_mocked_request("POST", "/api/chat.update"), handler)
    assert response.status == 200 and events == [0.05, "handled", 0.05]

    events.clear()
    upgrade = make_mocked_request("GET", "/gateway", headers={"Upgrade": "websocket"})
    await delay(upgrade, handler)
    assert events == ["handled"]  # the gateway's websocket is not delayed
    events.clear()
    await network.round_trip(lambda: 0.0)(make_mocked_request("GET", "/x"), handler)
    assert events == ["handled"]
