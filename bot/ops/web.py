"""The bot's one HTTP server (when PORT is set): health checks, and routes adapters mount on it."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from aiohttp import web

from bot.ops.metrics import CONTENT_TYPE, Metrics

log = logging.getLogger("parley.web")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
ReadinessCheck = Callable[[], Awaitable[tuple[str, bool]]]


class WebServer:
    """Routes are added before `start()`; adapters (Slack's events endpoint) mount theirs here."""

    def __init__(self) -> None:
        self.app = web.Application()
        self.app.router.add_get("/healthz", self._healthz)
        self.app.router.add_get("/readyz", self._readyz)
        self._checks: list[ReadinessCheck] = []
        self._runner: web.AppRunner | None = None
        self.port: int | None = None

    def add_route(self, method: str, path: str, handler: Handler) -> None:
        self.app.router.add_route(method, path, handler)

    def enable_metrics(self, metrics: Metrics) -> None:
        """Serve `metrics` at GET /metrics in the Prometheus text format."""

        async def render(_request: web.Request) -> web.Response:
            response = web.Response(body=metrics.render())
            response.headers["Content-Type"] = CONTENT_TYPE
            return response

        self.app.router.add_get("/metrics", render)

    def add_readiness_check(self, check: ReadinessCheck) -> None:
        self._checks.append(check)

    async def start(self, host: str, port: int) -> int:
        """Serve on host:port (port 0 picks a free one); returns the bound port."""
        self._runner = web.AppRunner(self.app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, host, port)
        await site.start()
        server = site._server  # aiohttp exposes the bound sockets only here
        sockets = getattr(server, "sockets", None) or []
        self.port = sockets[0].getsockname()[1] if sockets else port
        log.info("web server listening host=%s port=%s", host, self.port)
        return self.port

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def _healthz(self, _request: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    async def _readyz(self, _request: web.Request) -> web.Response:
        results = {}
        for check in self._checks:
            try:
                name, ok = await check()
            except Exception as exc:  # a failing check is a "not ready", never a 500
                name, ok = getattr(check, "__name__", "check"), False
                log.warning("readiness check failed check=%s error=%s", name, exc)
            results[name] = ok
        ready = all(results.values())
        return web.json_response(
            {"status": "ready" if ready else "not ready", "checks": results},
            status=200 if ready else 503,
        )
