"""A network between the bot and a platform fake: a round trip on every HTTP call.

Half of it before the fake handles the request (the request travelling), half after (the
answer travelling back), so what the fake shows changes half a round trip after the bot sent
it and the bot hears back a whole round trip after. Websockets (the gateway) are left alone.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from aiohttp import web

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def round_trip(seconds: Callable[[], float]) -> Callable[..., Awaitable[web.StreamResponse]]:
    """An aiohttp middleware delaying each request by `seconds()` in all, half each way."""

    @web.middleware
    async def delay(request: web.Request, handler: Handler) -> web.StreamResponse:
        rtt = seconds()
        if rtt <= 0 or request.headers.get("Upgrade", "").lower() == "websocket":
            return await handler(request)
        await asyncio.sleep(rtt / 2)
        response = await handler(request)
        await asyncio.sleep(rtt / 2)
        return response

    return delay
