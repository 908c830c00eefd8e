"""The gateway websocket: HELLO, IDENTIFY -> READY + GUILD_CREATE, heartbeats, dispatches.

Sharded as Discord shards: an IDENTIFY names its shard `[id, count]` (`[0, 1]` when it names
none); the session gets the READY and GUILD_CREATEs of its shard's guilds only, and each guild's
events go only to the sessions of its shard, `(guild_id >> 22) % count`; events outside a guild
(DMs) to shard 0. A shard id that is not below its count closes the socket with 4010 (Invalid
shard), as Discord does.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from typing import Any

from aiohttp import WSMsgType, web

HELLO, IDENTIFY, HEARTBEAT, HEARTBEAT_ACK, DISPATCH, RESUME, INVALID_SESSION = 10, 2, 1, 11, 0, 6, 9
INVALID_SHARD = 4010


def shard_of(guild_id: str | None, count: int) -> int:
    """The shard of a guild's events (Discord's formula); 0 outside a guild."""
    return (int(guild_id) >> 22) % count if guild_id else 0


class Gateway:
    """Serves the bot's gateway sessions; `dispatch` sends an event to every identified session."""

    def __init__(
        self,
        token: Callable[[], str],
        ready: Callable[[tuple[int, int]], dict[str, Any]],
        guild_creates: Callable[[], list[dict[str, Any]]],
    ) -> None:
        self._token = token
        self._ready = ready
        self._guild_creates = guild_creates
        self._sessions: list[web.WebSocketResponse] = []
        self._shards: dict[web.WebSocketResponse, tuple[int, int]] = {}
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
            self._shards.pop(ws, None)
            self.closed_sessions += 1
        return ws

    async def _identify(self, ws: web.WebSocketResponse, data: dict[str, Any]) -> None:
        self.identifies.append(data)
        if data.get("token") != self._token():
            await ws.close(code=4004, message=b"Authentication failed.")
            return
        shard = data.get("shard") or [0, 1]
        valid = isinstance(shard, list) and len(shard) == 2
        if not valid or not all(isinstance(n, int) for n in shard) or not 0 <= shard[0] < shard[1]:
            await ws.close(code=INVALID_SHARD, message=b"Invalid shard.")
            return
        mine = (shard[0], shard[1])
        self._sessions.append(ws)
        self._shards[ws] = mine
        await self._send(ws, "READY", self._ready(mine))
        for guild in self._guild_creates():
            if shard_of(guild["id"], mine[1]) == mine[0]:
                await self._send(ws, "GUILD_CREATE", guild)
        self.identified.set()

    @property
    def shards(self) -> list[tuple[int, int]]:
        """The shards of the sessions open now."""
        return [self._shards[ws] for ws in self._sessions if ws in self._shards]

    async def _send(self, ws: web.WebSocketResponse, event: str, data: dict[str, Any]) -> None:
        self._seq += 1
        self.events.append((time.monotonic(), event, data))
        await ws.send_str(json.dumps({"op": DISPATCH, "t": event, "s": self._seq, "d": data}))

    async def dispatch(self, event: str, data: dict[str, Any]) -> None:
        if not self._sessions:
            raise RuntimeError(f"no gateway session to dispatch {event} to")
        guild = data.get("guild_id")
        for ws in list(self._sessions):
            shard, count = self._shards.get(ws, (0, 1))
            if shard_of(guild, count) == shard:
                await self._send(ws, event, data)

    async def close(self) -> None:
        for ws in list(self._sessions):
            await ws.close()
        self._sessions.clear()
