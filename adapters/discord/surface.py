"""DiscordSurface: the core's Surface on a Discord channel or thread, plus edit pacing.

Rate limits. discord.py owns the per-route bucket bookkeeping: it waits pre-emptively when a
bucket's `X-RateLimit-Remaining` reaches 0, and it would silently sleep and retry on a 429. The
streamer must hear about those 429s, so `RateLimitWatch` (an aiohttp trace on discord.py's session)
sees each response: a per-route 429 on a message post or edit cancels that call (it was not
applied) and the surface raises `RateLimited(retry_after)`; the streamer then waits and sends the
newest text. Successful edits teach the pacing from their bucket's `Remaining` and
`Reset-After` (bot.pacing.BucketPacing), read by the streamer before every call, so a final
text has a call in hand and never waits for a whole window.

Discord also limits the whole bot to 50 REST requests a second (interaction callbacks and
`/webhooks/` excepted), which discord.py only learns from a global 429. So the same trace paces
every REST request under the API base through one shared budget, in the two stages of
`bot.pacing.SendWindow`: its slot when it starts, before it asks for a connection, and room in
the last second's window once it has its connection, just before it goes out (aiohttp awaits the
connection trace signals before sending; pacing only at the start let requests bunch up while
connections were opened). The gateway websocket is not under the API base and is never paced.
Requests waiting for a slot go by priority (`PRIORITY`, a context variable the task that makes
them sets, `in_priority`): a reply's first text and its final text first, then the rest, and the
opening of a reply's thread after them, so that at fifty replies at once the placeholders and
threads no longer hold back the text. An interim edit whose slot is more than `INTERIM_MAX_WAIT`
away is refused with `Deferred` without reserving anything, so the streamer coalesces text
instead of queueing stale frames; posts and final text always wait for their slot. A global 429
anyway pushes the budget back by its `Retry-After`; discord.py waits that one out itself
(cancelling the call mid-wait would leave discord.py's global lock shut), so the call just takes
longer.
"""

from __future__ import annotations

import asyncio
import logging
import math
import re
import time
from collections.abc import Awaitable, Callable, Iterable
from contextvars import ContextVar, copy_context
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any, TypeVar

import aiohttp
import discord
import yarl

from adapters.discord.views import reply_view
from bot.pacing import NORMAL, URGENT, BucketPacing, SendWindow, TeamBudget
from bot.ports import Control, Deferred, MessageRef, PlatformLimits, RateLimited, SurfaceError

log = logging.getLogger("parley.discord")

MAX_CHARS = 2500
"""Characters per reply message. A reply is a Components V2 message (`reply_view`), whose Text
Displays may hold 4,000 characters in all, but Discord also has an undocumented limit on their
size in UTF-8 (about 10,170 bytes, 12 per display included) and answers 500 past it
(discord/discord-api-docs#8554): 4,000 characters of CJK or emoji would fail. The splitter counts
characters, so we take the most that no text can push past that size: 2,500 x 4 bytes + 12."""
DEFAULT_EDIT_INTERVAL = 1.0
"""Seconds between edits of one message until Discord's headers say otherwise."""
_MESSAGE_PATH = re.compile(r"/channels/(?P<channel>\d+)/messages(?:/(?P<message>\d+))?$")
_WEBHOOK_MESSAGE_PATH = re.compile(r"/webhooks/\d+/[^/]+/messages/(?P<message>\d+|@original)$")
"""An interaction's own message (its response or a followup), edited with the interaction token."""
_UNPACED_PATH = re.compile(r"/(?:interactions/[^/]+/[^/]+/callback|webhooks/)")
"""Paths (after the API base) that Discord's global limit does not count."""
_TOKEN_IN_PATH = re.compile(r"(/(?:webhooks|interactions)/\d+/)[^/]+")
TOKEN_EXPIRED = 50027
"""Discord's "Invalid Webhook Token": the interaction's 15 minutes are over."""
GLOBAL = "global"
"""The budget key of Discord's global request limit."""
INTERIM_MAX_WAIT = 0.3
"""Seconds an interim edit may wait for a global slot; further off, it is refused (Deferred):
what waits in the queue shows its text as it was when it joined (at fifty replies at once, a
second of that was most of their token delay)."""
DEFAULT_API_BASE = "https://discord.com/api/v10"

Notify = Callable[[str], Awaitable[None]]
T = TypeVar("T")


PRIORITY: ContextVar[int] = ContextVar("parley_discord_priority", default=NORMAL)
"""The priority of the REST requests a task makes, read as each waits for its global slot."""


def in_priority(priority: int, call: Awaitable[T]) -> asyncio.Task[T]:
    """Run `call` as a task whose requests wait for their global slots at `priority`."""
    context = copy_context()
    context.run(PRIORITY.set, priority)
    return asyncio.get_running_loop().create_task(_awaited(call), context=context)


async def _awaited(call: Awaitable[T]) -> T:
    return await call


def webhook_key(message_id: str) -> str:
    """The pacing key of a message edited through its interaction's webhook (not its channel)."""
    return f"webhook:{message_id}"


def loggable(path: str) -> str:
    """A request path fit for the logs: interaction tokens are credentials for 15 minutes."""
    return _TOKEN_IN_PATH.sub(r"\1[token]", path)


class TokenExpired(SurfaceError):
    """An interaction webhook call failed because the interaction's token has expired."""


@dataclass
class RateLimitWatch:
    """Observes discord.py's HTTP traffic: global pacing, 429s on message calls and per-channel
    edit pacing."""

    budget: TeamBudget | None = None
    """Discord's global request limit, shared by every paced REST request; None: no pacing."""
    api_base: str = DEFAULT_API_BASE
    pacing: BucketPacing = field(default_factory=lambda: BucketPacing(DEFAULT_EDIT_INTERVAL))
    """Per channel (or interaction webhook): edits paced from their bucket's headers."""
    waiting: dict[tuple[str, str, str], asyncio.Future[float | None]] = field(default_factory=dict)
    """Message calls in flight: the 429's retry-after, or None once Discord applied the call."""
    _finishing: set[asyncio.Future[Any]] = field(default_factory=set)
    seen_429: int = 0
    seen_global_429: int = 0

    def trace_config(self) -> aiohttp.TraceConfig:
        config = aiohttp.TraceConfig()
        config.on_request_start.append(self._on_start)
        config.on_connection_create_end.append(self._on_connection)
        config.on_connection_reuseconn.append(self._on_connection)
        config.on_request_headers_sent.append(self._on_headers_sent)
        config.on_request_end.append(self._on_end)
        return config

    def __post_init__(self) -> None:
        base = yarl.URL(self.api_base)  # parsed once: paced() runs for every request
        self._host = (base.host, base.port)
        self._prefix = base.path.rstrip("/")
        self.window = SendWindow(self.budget, GLOBAL) if self.budget is not None else None

    def paced(self, url: yarl.URL) -> bool:
        """A REST request Discord's global limit counts: under the API base, and not an
        interaction callback or webhook (the gateway and the CDN are elsewhere)."""
        if url.scheme not in ("http", "https") or (url.host, url.port) != self._host:
            return False
        if not url.path.startswith(self._prefix + "/"):
            return False
        return _UNPACED_PATH.match(url.path[len(self._prefix) :]) is None

    def global_wait(self) -> float:
        """Seconds until a request asking now would have its global slot, reserving nothing."""
        return self.window.wait() if self.window is not None else 0.0

    async def _on_start(
        self,
        session: aiohttp.ClientSession,
        context: SimpleNamespace,
        params: aiohttp.TraceRequestStartParams,
    ) -> None:
        """A paced request waits for its slot before it asks for a connection (against
        Discord, a TLS connection each, for every thread creation queued behind the others)."""
        context.paced = self.window is not None and self.paced(params.url)
        if context.paced and self.window is not None:
            await self.window.take_slot(PRIORITY.get())

    async def _on_connection(
        self, session: aiohttp.ClientSession, context: SimpleNamespace, params: object
    ) -> None:
        """The request has its connection and goes out next: never more than the rate's worth
        in any one second, counted here (aiohttp awaits this before it sends)."""
        if self.window is not None and getattr(context, "paced", False):
            context.decided = await self.window.go_out()

    async def _on_headers_sent(
        self, session: aiohttp.ClientSession, context: SimpleNamespace, params: object
    ) -> None:
        decided = getattr(context, "decided", None)
        if decided is not None and self.window is not None:
            self.window.went_out(decided)

    async def _on_end(
        self, session: aiohttp.ClientSession, context: SimpleNamespace, params: Any
    ) -> None:
        headers = params.response.headers
        if params.response.status == 429 and _is_global(headers):
            self._global_429(params.method, params.url.path, headers)
            return
        path = params.url.path
        if (match := _MESSAGE_PATH.search(path)) is not None:
            channel, message = match["channel"], match["message"] or ""
        elif (match := _WEBHOOK_MESSAGE_PATH.search(path)) is not None:
            message = match["message"]
            channel = webhook_key(message)
        else:
            return
        key = (params.method, channel, message)
        if params.response.status == 429:
            self.seen_429 += 1
            retry_after = _float(headers.get("X-RateLimit-Reset-After")) or _float(
                headers.get("Retry-After")
            )
            log.info(
                "discord 429 on %s %s, retry after %.2fs",
                params.method,
                loggable(path),
                retry_after,
            )
            waiter = self.waiting.get(key)
            if waiter is not None and not waiter.done():
                waiter.set_result(retry_after or 1.0)
            return
        waiter = self.waiting.get(key)
        if waiter is not None and not waiter.done() and 200 <= params.response.status < 300:
            waiter.set_result(None)  # applied
        if params.method == "PATCH" and "X-RateLimit-Remaining" in headers:
            self.pacing.learn(
                channel,
                _float(headers.get("X-RateLimit-Remaining")),
                _float(headers.get("X-RateLimit-Reset-After")),
            )

    def _global_429(self, method: str, path: str, headers: Any) -> None:
        """Everyone waits out a global 429; discord.py retries the call itself after the wait."""
        self.seen_global_429 += 1
        retry_after = _float(headers.get("Retry-After")) or 1.0
        if self.budget is not None:
            self.budget.back_off(GLOBAL, retry_after)
        log.warning(
            "discord global 429 on %s %s, all requests wait %.2fs",
            method,
            loggable(path),
            retry_after,
        )

    async def call(
        self,
        method: str,
        channel: str,
        message: str,
        call: Awaitable[Any],
        *,
        applied_is_enough: bool = False,
        priority: int = NORMAL,
    ) -> Any:
        """Run one discord.py message call; a 429 on it cancels it and raises RateLimited.
        `priority`: its place among the requests waiting for a global slot (bot.pacing).

        With `applied_is_enough` (edits, whose result nobody reads), return None as soon as
        Discord answers 2xx: when that answer empties the bucket, discord.py sleeps until the
        bucket resets before the call returns, and the streamer must not wait that out on top of
        its own pacing (the next edit waits in discord.py's bucket instead, if it must).
        """
        key = (method, channel, message)
        waiter: asyncio.Future[float | None] = asyncio.get_running_loop().create_future()
        self.waiting[key] = waiter
        task = in_priority(priority, call)
        try:
            await asyncio.wait({task, waiter}, return_when=asyncio.FIRST_COMPLETED)
            if task.done():
                return _result(task)
            retry_after = waiter.result()
            if retry_after is not None:
                task.cancel()
                await asyncio.wait({task})
                raise RateLimited(retry_after)
            if applied_is_enough:
                self._finishing.add(task)
                task.add_done_callback(self._finished)
                return None
            await asyncio.wait({task})
            return _result(task)
        finally:
            if self.waiting.get(key) is waiter:
                del self.waiting[key]
            if not task.done() and task not in self._finishing:
                task.cancel()

    def _finished(self, task: asyncio.Future[Any]) -> None:
        self._finishing.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.warning("discord call failed after it was applied: %r", task.exception())


def _result(task: asyncio.Future[Any]) -> Any:
    try:
        return task.result()
    except discord.RateLimited as exc:  # only past max_ratelimit_timeout
        raise RateLimited(exc.retry_after) from None
    except discord.HTTPException as exc:
        if exc.status == 429:
            raise RateLimited(1.0) from None
        if exc.code == TOKEN_EXPIRED:
            raise TokenExpired(f"discord {exc.status} (code {exc.code})") from exc
        raise SurfaceError(f"discord {exc.status} (code {exc.code}): {exc.text}") from exc
    except (aiohttp.ClientError, TimeoutError) as exc:
        raise SurfaceError(f"discord unreachable: {exc!r}") from exc


def _is_global(headers: Any) -> bool:
    return bool(
        headers.get("X-RateLimit-Global", "").lower() == "true"
        or headers.get("X-RateLimit-Scope") == "global"
    )


def _float(value: str | None) -> float:
    try:
        return float(value) if value else 0.0
    except ValueError:
        return 0.0


class DiscordSurface:
    """Posts into `channel`; the first post may fill a placeholder message already on screen.

    A placeholder sent as an interaction followup (a `discord.WebhookMessage`) is edited through
    the interaction's webhook until `webhook_until` (epoch seconds): such edits are not under
    Discord's global limit, so a /chat reply's first text and its edits never queue behind other
    conversations' requests. Past that time, or once Discord answers that the token has expired
    (50027), the message is edited with the bot token like any other (a non-ephemeral interaction
    message is the bot's own).
    """

    def __init__(
        self,
        channel: discord.abc.Messageable,
        channel_id: str,
        watch: RateLimitWatch,
        *,
        placeholder: discord.Message | None = None,
        reference: discord.Message | None = None,
        notify: Notify | None = None,
        webhook_until: float = 0.0,
        shown: Iterable[discord.PartialMessage] = (),
    ) -> None:
        """`shown`: messages of the reply posted before (by a process that died), to edit."""
        self._channel = channel
        self._channel_id = channel_id
        self._watch = watch
        self._placeholder = placeholder
        self._reference = reference
        self._notify = notify
        self._webhook = placeholder if isinstance(placeholder, discord.WebhookMessage) else None
        self._webhook_until = webhook_until
        self._partials = {str(partial.id): partial for partial in shown}
        self._posted = 0
        self._shown = False
        """Whether the reply's first text was sent (with the bot token)."""
        self._asked = -math.inf
        """When (monotonic) this reply last asked for an edit or a post."""
        # Whose edit bucket paces the live message: its webhook's, or its channel's.
        if self._webhook is not None:
            self._pacing = webhook_key(str(self._webhook.id))
        elif placeholder is not None:
            self._pacing = str(placeholder.channel.id)
        else:
            self._pacing = channel_id

    @property
    def limits(self) -> PlatformLimits:
        pacing = self._watch.pacing
        interval = pacing.interval(self._pacing)
        final = pacing.final_interval(self._pacing)
        # The streamer counts from when its last call was asked for; an empty bucket refills
        # at a time of its own, which that call may have reached late (queued for a slot).
        empty_for = pacing.refill(self._pacing) - self._asked
        if empty_for > 0:
            interval = max(interval, empty_for)
            final = empty_for if final is None else max(final, empty_for)
        return PlatformLimits(
            max_chars=MAX_CHARS, min_edit_interval=interval, final_interval=final,
            can_delete=True,
        )  # fmt: skip

    async def post(
        self, text: str, controls: tuple[Control, ...] = (), *, final: bool = False
    ) -> MessageRef:
        self._asked = time.monotonic()
        if self._posted == 0 and self._placeholder is not None:
            message = self._placeholder
            ref = MessageRef(str(message.id), str(message.channel.id))
            self._partials[ref.id] = message.channel.get_partial_message(message.id)  # type: ignore[union-attr]
            await self.edit(ref, text, controls, final=final)  # RateLimited: left for the retry
            self._posted += 1
            return ref
        reference = self._reference if self._posted == 0 else None
        sent: discord.Message = await self._watch.call(
            "POST",
            self._channel_id,
            "",
            self._channel.send(view=reply_view(text, controls), reference=reference),  # type: ignore[arg-type]
            priority=self._priority(final),
        )
        self._shown = True
        self._posted += 1
        ref = MessageRef(str(sent.id), str(sent.channel.id))
        self._pacing = ref.channel
        self._partials[ref.id] = sent.channel.get_partial_message(sent.id)  # type: ignore[union-attr]
        return ref

    async def edit(
        self, ref: MessageRef, text: str, controls: tuple[Control, ...] = (), *, final: bool = False
    ) -> None:
        self._asked = time.monotonic()
        webhook = self._webhook
        if (
            webhook is not None
            and ref.id == str(webhook.id)
            and await self._edit_through_webhook(webhook, text, controls)
        ):
            return
        if not final and self._shown:  # (a reply's first text goes ahead of the queue)
            wait = self._watch.global_wait()
            if wait > INTERIM_MAX_WAIT:  # a newer frame will be due by then: let it coalesce
                raise Deferred(wait, "global request budget")
        partial = self._partials[ref.id]
        await self._watch.call(
            "PATCH",
            ref.channel,
            ref.id,
            partial.edit(view=reply_view(text, controls)),
            applied_is_enough=True,
            priority=self._priority(final),
        )
        self._shown = True

    def _priority(self, final: bool) -> int:
        """A reply's first text and its final text go before other requests waiting for a
        global slot (other replies' interim edits, new replies' placeholders, threads)."""
        return URGENT if final or not self._shown else NORMAL

    async def _edit_through_webhook(
        self, message: discord.WebhookMessage, text: str, controls: tuple[Control, ...]
    ) -> bool:
        """Edit with the interaction's token while it is good; False: use the bot token now."""
        if time.time() < self._webhook_until:
            key = webhook_key(str(message.id))
            try:
                await self._watch.call(
                    "PATCH",
                    key,
                    str(message.id),
                    message.edit(view=reply_view(text, controls)),
                    applied_is_enough=True,
                )
                return True
            except TokenExpired:
                pass
        log.info("interaction token expired: message %s is edited with the bot token", message.id)
        self._webhook = None
        if self._pacing == webhook_key(str(message.id)):
            self._pacing = str(message.channel.id)
        return False

    async def delete(self, ref: MessageRef) -> None:
        """A part the final text no longer needs (never the first: that holds the reply)."""
        partial = self._partials.pop(ref.id)
        await self._watch.call("DELETE", ref.channel, ref.id, partial.delete())

    def fold(self, label: str, text: str) -> str:
        """Small print, then a spoiler: the text shows when clicked. A spoiler cannot hold
        `||` or a code fence, so those are broken up."""
        inert = text.replace("||", "| |").replace("```", "ʼʼʼ")
        return f"-# {label}\n||{inert}||"

    async def status(self, line: str, controls: tuple[Control, ...] = ()) -> None:
        """Never called: Discord's messages can be rewritten, so "thinking…" is the reply's own
        first frame (in the placeholder)."""

    async def notify(self, text: str) -> None:
        """A refusal or error: in the placeholder if it is still empty, else a new message."""
        try:
            if self._notify is not None:
                await self._notify(text)
            elif self._placeholder is not None and self._posted == 0:
                self._posted = 1
                await self._placeholder.edit(view=reply_view(text))
            else:
                await self._channel.send(text, reference=self._reference)  # type: ignore[arg-type]
        except discord.HTTPException as exc:
            log.warning("could not show a notice in channel %s: %s", self._channel_id, exc)
