"""The Slack fake's Socket Mode side: the websocket apps.connections.open points at."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

from aiohttp import WSMsgType, web

from tests.fakes.slack.records import SocketAck
from tests.fakes.slack.state import APP_ID, FakeState


class SocketMode(FakeState):
    async def wait_socket(self, within: float = 15.0) -> None:
        await asyncio.wait_for(self._socket_ready.wait(), within)

    async def send_envelope(
        self, type_: str, payload: dict[str, Any], *, accepts_response_payload: bool = False
    ) -> str:
        """Push one envelope to the connected app; returns its envelope_id."""
        if not self._sockets:
            raise AssertionError("no Socket Mode connection")
        envelope_id = f"env-{next(self._ids)}"
        envelope = {
            "envelope_id": envelope_id,
            "type": type_,
            "payload": payload,
            "accepts_response_payload": accepts_response_payload,
            "retry_attempt": 0,
            "retry_reason": "",
        }
        await self._sockets[-1].send_str(json.dumps(envelope))
        return envelope_id

    async def wait_ack(self, envelope_id: str, within: float = 5.0) -> SocketAck:
        found: list[SocketAck] = []

        def acked() -> bool:
            found[:] = [a for a in self.acks if a.envelope_id == envelope_id]
            return bool(found)

        await self.wait_for(acked, within)
        return found[0]

    async def _link(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(autoping=True)
        await ws.prepare(request)
        self._sockets.append(ws)
        await ws.send_str(
            json.dumps(
                {
                    "type": "hello",
                    "num_connections": len(self._sockets),
                    "debug_info": {"host": "fake", "approximate_connection_time": 18060},
                    "connection_info": {"app_id": APP_ID},
                }
            )
        )
        self._socket_ready.set()
        try:
            async for msg in ws:
                if msg.type != WSMsgType.TEXT:
                    continue
                data = json.loads(msg.data)
                if "envelope_id" in data:
                    self.acks.append(
                        SocketAck(data["envelope_id"], data.get("payload"), time.monotonic())
                    )
                    self._touch()
        finally:
            self._sockets.remove(ws)
            if not self._sockets:
                self._socket_ready.clear()
        return ws
