"""The gateway websocket: HELLO, IDENTIFY -> READY + GUILD_CREATE, heartbeats, dispatches."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from typing import Any

from aiohttp import WSMsgType, web

HELLO, IDENTIFY, HEARTBEAT, HEARTBEAT_ACK, DISPATCH, RESUME, INVALID_SESSION = 10, 2, 1, 11, 0, 6, 9


class Gateway:
    """Serves the bot's gateway sessions; `dispatch` sends an event to every identified session."""

    def __init__(
        self,
        token: Callable[[], str],
        ready: Callable[[], dict[str, Any]],
        guild_creates: Callable[[], list[dict[str, Any]]],
    ) -> None:
        self._token = token
        self._ready = ready
        self._guild_creates = guild_creates
        self._sessions: list[web.WebSocketResponse] = []
        self._seq = 0
        self.identified = asyncio.Event()
        self.identifies: list[dict[str, Any]] = []
        self.events: list[tuple[float, str, dict[str, Any]]] = []
        self.closed_sessions = 0

    @property
    def connected(self) -> int:
        return len(self._sessions)

    async def handle(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(autoping=True)
        await ws.prepare(request)
        await ws.send_str(
            json.dumps({"op": HELLO, "d": {"heartbeat_interval": 41250}, "s": None, "t": None})
        )
        try:
            async for msg in ws:
                if msg.type != WSMsgType.TEXT:
                    continue
                frame = json.loads(msg.data)
                op = frame.get("op")
                if op == HEARTBEAT:
                    await ws.send_str(json.dumps({"op": HEARTBEAT_ACK, "d": None}))
                elif op == IDENTIFY:
                    await self._identify(ws, frame["d"])
                elif op == RESUME:
                    await ws.send_str(json.dumps({"op": INVALID_SESSION, "d": False}))
        finally:
            if ws in self._sessions:
                self._sessions.remove(ws)
            self.closed_sessions += 1
        return ws

    async def _identify(self, ws: web.WebSocketResponse, data: dict[str, Any]) -> None:
        self.identifies.append(data)
        if data.get("token") != self._token():
            await ws.close(code=4004, message=b"Authentication failed.")
            return
        self._sessions.append(ws)
        await self._send(ws, "READY", self._ready())
        for guild in self._guild_creates():
            await self._send(ws, "GUILD_CREATE", guild)
        self.identified.set()

    async def _send(self, ws: web.WebSocketResponse, event: str, data: dict[str, Any]) -> None:
        self._seq += 1
        self.events.append((time.monotonic(), event, data))
        await ws.send_str(json.dumps({"op": DISPATCH, "t": event, "s": self._seq, "d": data}))

    async def dispatch(self, event: str, data: dict[str, Any]) -> None:
        if not self._sessions:
            raise RuntimeError(f"no gateway session to dispatch {event} to")
        for ws in list(self._sessions):
            await self._send(ws, event, data)

    async def close(self) -> None:
        for ws in list(self._sessions):
            await ws.close()
        self._sessions.clear()
