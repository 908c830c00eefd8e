"""What every part of the Slack fake shares: its identity, its records, its message ts."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import time
from collections.abc import Callable
from typing import Any

from aiohttp import web

from tests.fakes.slack.records import (
    Ephemeral,
    Message,
    ResponseUrl,
    Shown,
    SlackCall,
    SocketAck,
    UploadedFile,
)

BOT_USER = "UBOT0001"
BOT_ID = "BBOT0001"
APP_ID = "A0PARLEY"


class FakeState:
    """The fake's records; the method, file and socket parts all read and write these."""

    def __init__(self) -> None:
        self.calls: list[SlackCall] = []
        self.orgs: set[str] = set()
        """Organizations with an org-wide install: their token's owner is the organization."""
        self.messages: dict[tuple[str, str], Message] = {}
        self.deleted: list[Message] = []
        self.timeline: list[Shown] = []  # every text a message showed, when (benchmarks)
        self.ephemerals: list[Ephemeral] = []
        self.response_urls: dict[str, ResponseUrl] = {}
        self.uploads: dict[str, UploadedFile] = {}
        self.files: list[UploadedFile] = []
        self.acks: list[SocketAck] = []
        self.statuses: list[dict[str, Any]] = []
        self.prompts: list[dict[str, Any]] = []
        self.titles: list[tuple[str, str]] = []
        self.users: dict[str, dict[str, Any]] = {}  # user id -> users.info's `user` object
        self.native_streaming = True
        self.native_refusal = "feature_not_enabled"
        self._ts = itertools.count(1)
        self._ids = itertools.count(1)
        self._sockets: list[web.WebSocketResponse] = []
        self._socket_ready = asyncio.Event()
        self._changed = asyncio.Event()
        self._port = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._port}"

    def thread(self, channel: str, thread_ts: str) -> list[Message]:
        """The replies in a thread (not its parent), oldest first."""
        found = [
            m
            for m in self.messages.values()
            if m.channel == channel and m.thread_ts == thread_ts and m.ts != thread_ts
        ]
        return sorted(found, key=lambda m: m.ts)

    def _shown(self, message: Message) -> None:
        """`message` now shows its `text`: remember it, and when."""
        message.edits.append(message.text)
        self.timeline.append(Shown(time.monotonic(), message.channel, message.ts, message.text))

    def _touch(self) -> None:
        self._changed.set()

    def _next_ts(self) -> str:
        return f"{1_760_000_000 + next(self._ts)}.{next(self._ts) % 1_000_000:06d}"

    async def wait_for(self, predicate: Callable[[], object], within: float = 15.0) -> None:
        """Wait until `predicate()` is truthy, re-checking after every change the fake sees."""
        deadline = time.monotonic() + within
        while not predicate():
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError("timed out waiting for the Slack fake")
            self._changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), min(left, 0.2))
