"""`GET /health-check/image-providers`: per provider availability, reason, breaker state."""

from __future__ import annotations

from aiohttp import web

from bot.images.router import ImageRouter
from bot.ops.web import WebServer

PATH = "/health-check/image-providers"


async def provider_health(router: ImageRouter) -> dict[str, object]:
    providers: dict[str, object] = {}
    available = 0
    for status in await router.all_availability():
        available += status.available
        providers[status.provider] = {
            "available": status.available,
            "reason": status.reason or None,
            "lastCheck": status.checked_at.isoformat(),
            "circuitBreakerState": status.breaker.value,
        }
    total = len(providers)
    return {
        "providers": providers,
        "summary": {"total": total, "available": available, "unavailable": total - available},
    }


def register(web_server: WebServer, router: ImageRouter) -> None:
    async def handler(_request: web.Request) -> web.Response:
        return web.json_response(await provider_health(router))

    web_server.add_route("GET", PATH, handler)
