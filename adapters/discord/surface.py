"""DiscordSurface: the core's Surface on a Discord channel or thread, plus edit pacing.

Rate limits. discord.py owns the bucket bookkeeping: it waits pre-emptively when a bucket's
`X-RateLimit-Remaining` reaches 0, and it would silently sleep and retry on a 429. The streamer
must hear about every 429, so `RateLimitWatch` (an aiohttp trace on discord.py's session) sees
each response: a 429 on a message post or edit cancels that call (it was not applied) and the
surface raises `RateLimited(retry_after)`; the streamer then waits and sends the newest text.
Successful responses teach the pacing: the edit interval for a channel is `Reset-After /
(Remaining + 1)` of its last edit, so it follows Discord's headers rather than a constant.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

import aiohttp
import discord

from adapters.discord.views import view_for
from bot.ports import Control, MessageRef, PlatformLimits, RateLimited, SurfaceError

log = logging.getLogger("parley.discord")

MAX_CHARS = 2000
DEFAULT_EDIT_INTERVAL = 1.0
"""Seconds between edits of one message until Discord's headers say otherwise."""
_MIN_INTERVAL, _MAX_INTERVAL = 0.2, 5.0
_MESSAGE_PATH = re.compile(r"/channels/(?P<channel>\d+)/messages(?:/(?P<message>\d+))?$")

Notify = Callable[[str], Awaitable[None]]


@dataclass
class RateLimitWatch:
    """Observes discord.py's HTTP traffic: 429s on message calls and per-channel edit pacing."""

    intervals: dict[str, float] = field(default_factory=dict)
    waiting: dict[tuple[str, str, str], asyncio.Future[float]] = field(default_factory=dict)
    seen_429: int = 0

    def trace_config(self) -> aiohttp.TraceConfig:
        config = aiohttp.TraceConfig()
        config.on_request_end.append(self._on_end)
        return config

    async def _on_end(
        self, session: aiohttp.ClientSession, context: SimpleNamespace, params: Any
    ) -> None:
        match = _MESSAGE_PATH.search(params.url.path)
        if match is None:
            return
        headers = params.response.headers
        key = (params.method, match["channel"], match["message"] or "")
        if params.response.status == 429:
            self.seen_429 += 1
            retry_after = _float(headers.get("X-RateLimit-Reset-After")) or _float(
                headers.get("Retry-After")
            )
            log.info(
                "discord 429 on %s %s, retry after %.2fs",
                params.method,
                params.url.path,
                retry_after,
            )
            waiter = self.waiting.get(key)
            if waiter is not None and not waiter.done():
                waiter.set_result(retry_after or 1.0)
            return
        if params.method == "PATCH" and "X-RateLimit-Remaining" in headers:
            remaining = _float(headers.get("X-RateLimit-Remaining"))
            reset_after = _float(headers.get("X-RateLimit-Reset-After"))
            if reset_after:
                interval = reset_after / (remaining + 1)
                self.intervals[match["channel"]] = min(max(interval, _MIN_INTERVAL), _MAX_INTERVAL)

    def interval(self, channel_id: str) -> float:
        return self.intervals.get(channel_id, DEFAULT_EDIT_INTERVAL)

    async def call(self, method: str, channel: str, message: str, call: Awaitable[Any]) -> Any:
        """Run one discord.py message call; a 429 on it cancels it and raises RateLimited."""
        key = (method, channel, message)
        waiter: asyncio.Future[float] = asyncio.get_running_loop().create_future()
        self.waiting[key] = waiter
        task = asyncio.ensure_future(call)
        try:
            await asyncio.wait({task, waiter}, return_when=asyncio.FIRST_COMPLETED)
            if not task.done():
                task.cancel()
                await asyncio.wait({task})
                raise RateLimited(waiter.result())
            return _result(task)
        finally:
            if self.waiting.get(key) is waiter:
                del self.waiting[key]
            if not task.done():
                task.cancel()


def _result(task: asyncio.Future[Any]) -> Any:
    try:
        return task.result()
    except discord.RateLimited as exc:  # only past max_ratelimit_timeout
        raise RateLimited(exc.retry_after) from None
    except discord.HTTPException as exc:
        if exc.status == 429:
            raise RateLimited(1.0) from None
        raise SurfaceError(f"discord {exc.status} (code {exc.code}): {exc.text}") from exc
    except (aiohttp.ClientError, TimeoutError) as exc:
        raise SurfaceError(f"discord unreachable: {exc!r}") from exc


def _float(value: str | None) -> float:
    try:
        return float(value) if value else 0.0
    except ValueError:
        return 0.0


class DiscordSurface:
    """Posts into `channel`; the first post may fill a placeholder message already on screen."""

    def __init__(
        self,
        channel: discord.abc.Messageable,
        channel_id: str,
        watch: RateLimitWatch,
        *,
        placeholder: discord.Message | None = None,
        reference: discord.Message | None = None,
        notify: Notify | None = None,
    ) -> None:
        self._channel = channel
        self._channel_id = channel_id
        self._watch = watch
        self._placeholder = placeholder
        self._reference = reference
        self._notify = notify
        self._partials: dict[str, discord.PartialMessage] = {}
        self._posted = 0

    @property
    def limits(self) -> PlatformLimits:
        pacing_channel = (
            str(self._placeholder.channel.id) if self._placeholder else self._channel_id
        )
        return PlatformLimits(
            max_chars=MAX_CHARS, min_edit_interval=self._watch.interval(pacing_channel)
        )

    async def post(self, text: str, controls: tuple[Control, ...] = ()) -> MessageRef:
        if self._posted == 0 and self._placeholder is not None:
            message = self._placeholder
            ref = MessageRef(str(message.id), str(message.channel.id))
            self._partials[ref.id] = message.channel.get_partial_message(message.id)  # type: ignore[union-attr]
            await self.edit(ref, text, controls)  # a RateLimited here leaves it for the retry
            self._posted += 1
            return ref
        reference = self._reference if self._posted == 0 else None
        sent: discord.Message = await self._watch.call(
            "POST",
            self._channel_id,
            "",
            self._channel.send(text, view=view_for(controls), reference=reference),  # type: ignore[arg-type]
        )
        self._posted += 1
        ref = MessageRef(str(sent.id), self._channel_id)
        self._partials[ref.id] = self._channel.get_partial_message(sent.id)  # type: ignore[attr-defined]
        return ref

    async def edit(self, ref: MessageRef, text: str, controls: tuple[Control, ...] = ()) -> None:
        partial = self._partials[ref.id]
        await self._watch.call(
            "PATCH",
            ref.channel,
            ref.id,
            partial.edit(content=text, view=view_for(controls)),
        )

    async def notify(self, text: str) -> None:
        """A refusal or error: in the placeholder if it is still empty, else a new message."""
        try:
            if self._notify is not None:
                await self._notify(text)
            elif self._placeholder is not None and self._posted == 0:
                self._posted = 1
                await self._placeholder.edit(content=text)
            else:
                await self._channel.send(text, reference=self._reference)  # type: ignore[arg-type]
        except discord.HTTPException as exc:
            log.warning("could not show a notice in channel %s: %s", self._channel_id, exc)
