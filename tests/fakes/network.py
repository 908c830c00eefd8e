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


class Loopback:
    """An aiohttp app served on a free port of 127.0.0.1 (a fake's `__aenter__`/`__aexit__`)."""

    port = 0
    _runner: web.AppRunner | None = None

    async def serve(self, app: web.Application) -> None:
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.1)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        server = site._server
        assert server is not None
        self.port = int(server.sockets[0].getsockname()[1])  # type: ignore[union-attr]

    async def __aexit__(self, *exc: object) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
