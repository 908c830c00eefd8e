"""SlackSurface: one reply place (a thread, or a DM) on Slack, behind the core's Surface port."""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from typing import Any

import aiohttp
from slack_sdk.errors import SlackApiError, SlackClientError
from slack_sdk.web.async_client import AsyncWebClient

from adapters.slack.blocks import controls_block, feedback_block, message_blocks, note_blocks
from adapters.slack.native import NATIVE_REFUSALS, NativeStream
from bot.engine.note import ControlsNote
from bot.pacing import TeamBudget
from bot.ports import (
    Control,
    Deferred,
    MessageRef,
    PlatformLimits,
    RateLimited,
    SurfaceError,
)

log = logging.getLogger("parley.slack")

MAX_CHARS = 3_500
"""Per message: chat.update fails with msg_too_long near 4,000 characters of text, whatever the
docs say, so longer replies continue in further thread replies."""
NOT_IN_CHANNEL = " Invite me first: `/invite @Parley`."
"""Added when Slack refuses a post with not_in_channel (a channel the app was not added to)."""
ON_TIME = 0.05
"""Seconds: a place in line this close is waited for inside the call; one further off is
refused (Deferred) and kept, so the streamer comes back then with its newest text."""


LOADING = ("Thinking…", "Reading the thread…", "Putting the answer together…")
"""The status's rotating loading messages while the model works (assistant threads)."""

CLASSIC_INTERVAL = 0.5
"""Seconds between edits of one message: Slack limits chat.update per workspace (Tier 3), not
per message, so a lone reply edits this often while the workspace's budget has slots, and many
replies share that budget (it defers the ones whose slot is too far off)."""
NATIVE_INTERVAL = 0.3
"""Seconds between appends to one native stream, on the same terms (chat.appendStream, Tier 4)."""


# The final text waits for nothing but its budget slot (the surface claims it).
CLASSIC_LIMITS = PlatformLimits(
    max_chars=MAX_CHARS, min_edit_interval=CLASSIC_INTERVAL, final_interval=0.0, can_delete=True
)
NATIVE_LIMITS = PlatformLimits(
    max_chars=MAX_CHARS, min_edit_interval=NATIVE_INTERVAL, final_interval=0.0,
    progress_marker="", can_delete=True, append_only=True,
)  # fmt: skip


Installed = Callable[[str], Awaitable[str | None]]
"""A workspace's bot token from the installation store (OAuth installs), or None."""


@dataclass(slots=True)
class Workspaces:
    """What every surface of one adapter shares: the clients, the budgets, what each team
    refused."""

    client: AsyncWebClient
    """The bot token's client (one workspace); with OAuth installs, a client without a token."""
    updates: TeamBudget
    appends: TeamBudget
    native_enabled: bool = True
    native_refused: set[str] = field(default_factory=set)
    streaming: Counter[str] = field(default_factory=Counter)
    """Native streams open per team: a lone one may spend an append to finish sooner."""
    status_refused: set[tuple[str, str]] = field(default_factory=set)
    installed: Installed | None = None
    """Set with OAuth installs: where a workspace's token is found when it is not known yet."""
    tokens: dict[str, str] = field(default_factory=dict)
    """Installed workspaces' bot tokens, by team, as bolt authorized their requests."""
    _clients: dict[str, AsyncWebClient] = field(default_factory=dict)

    def client_for(self, team: str) -> AsyncWebClient:
        """The client with this workspace's token (the one client without installs)."""
        token = self.tokens.get(team)
        if token is None:
            return self.client
        client = self._clients.get(team)
        if client is None or client.token != token:
            client = AsyncWebClient(token=token, base_url=self.client.base_url)
            self._clients[team] = client
        return client

    def learn(self, team: str, token: str | None) -> None:
        if token and team:
            self.tokens[team] = token

    def forget(self, team: str) -> None:
        """The app was uninstalled from the workspace, or its tokens revoked."""
        self.tokens.pop(team, None)
        self._clients.pop(team, None)

    async def load(self, team: str) -> None:
        """Before work no request started (a recovery, a notice): the workspace's token."""
        if self.installed is not None and team not in self.tokens:
            self.learn(team, await self.installed(team))

    def native_for(self, team: str) -> bool:
        return self.native_enabled and team not in self.native_refused


def slack_error(exc: SlackApiError) -> str:
    return str(exc.response.get("error") or "unknown_error")


def _retry_after(exc: SlackApiError) -> float | None:
    """Seconds to wait when Slack rate-limited the call (429, or 200 with `ratelimited`)."""
    status = getattr(exc.response, "status_code", 200)
    if status != 429 and slack_error(exc) != "ratelimited":
        return None
    headers = {k.lower(): v for k, v in (exc.response.headers or {}).items()}
    try:
        return max(float(headers.get("retry-after", 1)), 0.0)
    except (TypeError, ValueError):
        return 1.0


class SlackSurface:
    """Posts and edits in one channel (and thread) for one requester; see native.py for streams."""

    def __init__(
        self,
        spaces: Workspaces,
        *,
        team: str,
        channel: str,
        thread_ts: str | None,
        user: str,
        native: bool = True,
    ) -> None:
        """`native=False`: post and edit even where the workspace could stream natively."""
        self._spaces = spaces
        self._client = spaces.client_for(team)
        self.team = team
        self.channel = channel
        self.thread_ts = thread_ts
        self.user = user
        # Native streams must be thread replies (chat.startStream requires thread_ts).
        self._native = native and bool(thread_ts) and spaces.native_for(team)
        self._streams: dict[str, NativeStream] = {}
        self._last_call = -math.inf
        """When this reply last asked the workspace's budget for a slot (monotonic)."""
        self._places: dict[TeamBudget, float] = {}
        """This reply's place in line in each workspace budget, while it holds one."""
        self._note = ControlsNote(self)
        """The message holding Stop while a native stream runs (streams take no buttons)."""

    @property
    def limits(self) -> PlatformLimits:
        limits, budget = (
            (NATIVE_LIMITS, self._spaces.appends)
            if self._native
            else (CLASSIC_LIMITS, self._spaces.updates)
        )
        # While this reply waits for its place in line, the next interim frame waits for it
        # here, at the streamer, not inside the call with the text it had: it goes with the
        # newest.
        place = self._places.get(budget)
        wait = place - budget.now() if place is not None else 0.0
        if wait <= 0:
            return limits
        since = max(time.monotonic() - self._last_call, 0.0) if self._last_call > 0 else 0.0
        return replace(limits, min_edit_interval=max(limits.min_edit_interval, since + wait))

    @property
    def native(self) -> bool:
        return self._native

    # -- Surface -------------------------------------------------------------------------------

    async def post(
        self, text: str, controls: tuple[Control, ...] = (), *, final: bool = False
    ) -> MessageRef:
        if self._native:
            await self._seal_streams()
            try:
                return await self._start_stream(text, controls, final)
            except _Refused as exc:
                # Nothing rendered yet, so post-and-edit cannot show anything twice.
                log.warning(
                    "native streaming refused team=%s channel=%s error=%s: posting and editing",
                    self.team,
                    self.channel,
                    exc.error,
                )
                if exc.whole_team:
                    self._spaces.native_refused.add(self.team)
                self._native = False
        response = await self._call(
            "chat.postMessage",
            self._client.chat_postMessage,
            channel=self.channel,
            thread_ts=self.thread_ts,
            text=text,
            blocks=message_blocks(text, controls),
            unfurl_links=False,
            unfurl_media=False,
        )
        return MessageRef(str(response["ts"]), self.channel)

    async def edit(
        self, ref: MessageRef, text: str, controls: tuple[Control, ...] = (), *, final: bool = False
    ) -> None:
        stream = self._streams.get(ref.id)
        if stream is not None:
            await self._edit_stream(stream, text, controls, final)
            return
        await self._slot(self._spaces.updates, final=final)
        update: dict[str, Any] = {
            "channel": ref.channel or self.channel,
            "ts": ref.id,
            "text": text,
            "blocks": message_blocks(text, controls),
        }
        try:
            await self._call(
                "chat.update", self._client.chat_update, budget=self._spaces.updates, **update
            )
        except _StillStreaming:
            # A native stream its process never stopped (it died mid-reply): end it, then edit.
            await self._call(
                "chat.stopStream", self._client.chat_stopStream, channel=update["channel"],
                ts=ref.id,
            )  # fmt: skip
            await self._call(
                "chat.update", self._client.chat_update, budget=self._spaces.updates, **update
            )

    async def delete(self, ref: MessageRef) -> None:
        """A part the final text no longer needs (an open stream is ended first)."""
        stream = self._streams.pop(ref.id, None)
        if stream is not None and stream.open:
            await self._stop_stream(stream, stream.committed)
        await self._call(
            "chat.delete", self._client.chat_delete, channel=ref.channel or self.channel, ts=ref.id
        )

    async def notify(self, text: str) -> None:
        """An ephemeral note to the requester, in the thread; best effort."""
        await self.ephemeral(text)

    # -- beyond the port -------------------------------------------------------------------------

    async def ephemeral(self, text: str, user: str | None = None) -> None:
        """A note only `user` (the requester) sees; best effort, never raises."""
        try:
            await self._call(
                "chat.postEphemeral", self._client.chat_postEphemeral, channel=self.channel,
                user=user or self.user, text=text, thread_ts=self.thread_ts,
            )  # fmt: skip
        except SurfaceError as exc:
            log.warning("ephemeral note failed channel=%s: %s", self.channel, exc)

    async def say(self, text: str) -> None:
        """A short message in the thread (an error, an announcement); best effort, never raises."""
        try:
            await self._call(
                "chat.postMessage", self._client.chat_postMessage, channel=self.channel,
                thread_ts=self.thread_ts, text=text, unfurl_links=False,
            )  # fmt: skip
        except SurfaceError as exc:
            log.warning("message failed channel=%s: %s", self.channel, exc)

    async def thinking(self) -> None:
        """Show "is thinking…" until the first reply lands, where Slack supports it."""
        place = (self.team, self.channel)
        if not self.thread_ts or place in self._spaces.status_refused:
            return
        try:
            await self._client.assistant_threads_setStatus(
                channel_id=self.channel,
                thread_ts=self.thread_ts,
                status="is thinking…",
                loading_messages=list(LOADING),
            )
        except SlackApiError as exc:
            # Only assistant threads take a status; elsewhere stop asking.
            if _retry_after(exc) is None:
                self._spaces.status_refused.add(place)
            log.debug("setStatus refused channel=%s error=%s", self.channel, slack_error(exc))

    @property
    def assistant_thread(self) -> bool:
        """A thread of the app's DM: Slack's assistant container (titles, feedback)."""
        return self.channel.startswith("D") and bool(self.thread_ts)

    async def set_title(self, title: str) -> None:
        """Name an assistant thread after its first question; best effort."""
        if not self.assistant_thread or self.thread_ts is None:
            return
        try:
            await self._client.assistant_threads_setTitle(
                channel_id=self.channel, thread_ts=self.thread_ts, title=title
            )
        except SlackApiError as exc:
            log.debug("setTitle refused channel=%s error=%s", self.channel, slack_error(exc))

    async def close(self) -> None:
        """End any native stream left open (after a failure) with the text the core last gave it."""
        try:
            await self._seal_streams()
        except SurfaceError as exc:
            log.warning("could not end a native stream channel=%s: %s", self.channel, exc)
        await self._note.remove()

    # -- native streams ----------------------------------------------------------------------------

    async def _start_stream(
        self, text: str, controls: tuple[Control, ...], final: bool
    ) -> MessageRef:
        """`text`: interim, only what will not change (the streamer's, as the surface is
        append-only); final, all of it."""
        shown = text
        args: dict[str, Any] = {
            "channel": self.channel,
            "thread_ts": self.thread_ts,
            "recipient_team_id": self.team,
            "recipient_user_id": self.user,
        }
        stream = NativeStream("", "", text)
        args |= _content(stream.chunks(shown, final=final))
        response = await self._call(
            "chat.startStream", self._client.chat_startStream, refusable=True, **args,
            task_display_mode="timeline",
        )  # fmt: skip
        stream.ts, stream.committed = str(response["ts"]), shown
        self._streams[stream.ts] = stream
        self._spaces.streaming[self.team] += 1
        if final:
            await self._finish_stream(stream, text, controls)
        else:
            self._note.post_beside(controls)
        return MessageRef(stream.ts, self.channel)

    async def _edit_stream(
        self, stream: NativeStream, text: str, controls: tuple[Control, ...], final: bool
    ) -> None:
        if not stream.open:
            if text != stream.latest:
                log.warning("edit of an ended native stream ignored ts=%s", stream.ts)
            return
        stream.latest = text
        if final:
            await self._finish_stream(stream, text, controls)
            return
        await self._note.follow(controls)
        delta = stream.delta(text)
        if delta is None:
            log.warning("native stream text diverged ts=%s: holding it back", stream.ts)
            return
        if delta:
            await self._append(stream, delta, final=False)

    async def _append(self, stream: NativeStream, delta: str, *, final: bool) -> None:
        with stream.sending():
            content = _content(stream.chunks(delta, final=final))
            if content:  # else only a progress line that is still growing: nothing to say yet
                await self._slot(self._spaces.appends, final=final)
                await self._call(
                    "chat.appendStream",
                    self._client.chat_appendStream,
                    budget=self._spaces.appends,
                    channel=self.channel,
                    ts=stream.ts,
                    **content,
                )
        stream.committed += delta

    async def _finish_stream(
        self, stream: NativeStream, text: str, controls: tuple[Control, ...]
    ) -> None:
        """The final text, then Regenerate in the stream's closing call. Stop goes before that:
        once the reply shows Regenerate, no Stop may be left over. With a Stop note to delete,
        the rest of the text is appended meanwhile, so the last words show after one round trip
        rather than two, for the workspace's only open stream with a slot in its append budget
        now (else the closing call, which that budget does not count, carries the text: a busy
        workspace's appends are its other replies')."""
        delta = stream.delta(text)
        alone = self._spaces.streaming[self.team] <= 1
        if delta and self._note.shown and alone and self._spaces.appends.wait(self.team) <= 0:
            await asyncio.gather(self._append(stream, delta, final=True), self._note.remove())
        else:
            await self._note.remove()
        await self._stop_stream(stream, text, controls)

    async def _stop_stream(
        self, stream: NativeStream, text: str, controls: tuple[Control, ...] = ()
    ) -> None:
        delta = stream.delta(text)
        if delta is None:
            log.warning("native stream ended on diverging text ts=%s", stream.ts)
            delta = ""
        args: dict[str, Any] = {"channel": self.channel, "ts": stream.ts}
        blocks = controls_block(controls)
        regenerate = next((c for c in controls if c.action == "regenerate"), None)
        if regenerate is not None and self.assistant_thread:
            blocks.append(feedback_block(regenerate.ref))
        if blocks:
            args["blocks"] = blocks
        with stream.sending():
            args |= _content(stream.chunks(delta, final=True))
            await self._call("chat.stopStream", self._client.chat_stopStream, **args)
        stream.committed += delta
        if stream.open:
            self._spaces.streaming[self.team] -= 1
        stream.open = False

    def fold(self, label: str, text: str) -> str:
        """A quote under the answer (Slack folds long messages itself: "Show more")."""
        return f"> _{label}_\n> {text}"

    async def status(self, line: str, controls: tuple[Control, ...] = ()) -> None:
        """Before a native stream has text: its note says what the model does."""
        await self._note.say(line, controls)

    # -- the note beside a native stream (bot.engine.note) ------------------------------------

    async def post_note(self, line: str, controls: tuple[Control, ...]) -> str:
        response = await self._call(
            "chat.postMessage", self._client.chat_postMessage, channel=self.channel,
            thread_ts=self.thread_ts, text=line, blocks=note_blocks(line, controls),
        )  # fmt: skip
        return str(response["ts"])

    async def edit_note(self, ref: str, line: str, controls: tuple[Control, ...]) -> None:
        # Not skipped like an interim frame: the note's buttons and line must follow.
        await self._slot(self._spaces.updates, final=True)
        await self._call(
            "chat.update", self._client.chat_update, budget=self._spaces.updates,
            channel=self.channel, ts=ref, text=line, blocks=note_blocks(line, controls),
        )  # fmt: skip

    async def delete_note(self, ref: str) -> None:
        await self._call("chat.delete", self._client.chat_delete, channel=self.channel, ts=ref)

    async def _seal_streams(self) -> None:
        for stream in list(self._streams.values()):
            if stream.open:
                await self._stop_stream(stream, stream.latest)

    # -- calls -------------------------------------------------------------------------------------

    async def _slot(self, budget: TeamBudget, *, final: bool) -> None:
        """Wait for this reply's turn in the workspace's budget. An interim call takes a place
        in line (or comes with the one it holds); one more than ON_TIME off is refused
        (Deferred) and the place kept, so the streamer comes back then with its newest text. A
        final call claims the budget's next slot, ahead of the places in line."""
        self._last_call = time.monotonic()
        now = budget.now()
        place = self._places.pop(budget, None)
        if not final:
            if place is None or place < now - budget.spacing:  # none, or one left unused
                place = budget.reserve(self.team)
            if place - now > ON_TIME:
                self._places[budget] = place
                raise Deferred(place - now, "waiting for its turn in the workspace's budget")
        try:
            wait = budget.claim(self.team, max_wait=math.inf if final else ON_TIME)
        except Deferred as exc:  # final texts took the slots: the budget's next is this one's
            self._places[budget] = now + exc.retry_after
            raise
        if wait > 0:
            await asyncio.sleep(wait)

    async def _call(
        self,
        method: str,
        function: Any,
        *,
        budget: TeamBudget | None = None,
        refusable: bool = False,
        **kwargs: Any,
    ) -> Any:
        try:
            return await function(**kwargs)
        except SlackApiError as exc:
            retry_after = _retry_after(exc)
            if retry_after is not None:
                if budget is not None:
                    budget.back_off(self.team, retry_after)
                raise RateLimited(retry_after, f"{method} rate limited") from None
            error = slack_error(exc)
            if refusable and error in NATIVE_REFUSALS | {"channel_type_not_supported"}:
                raise _Refused(error, whole_team=error in NATIVE_REFUSALS) from None
            if error == "message_is_streaming":
                raise _StillStreaming(f"{method} failed: {error}") from None
            raise SurfaceError(f"{method} failed: {error}") from None
        except (SlackClientError, TimeoutError, OSError, aiohttp.ClientError) as exc:
            raise SurfaceError(f"{method} failed: {type(exc).__name__}") from None


def _content(chunks: list[dict[str, Any]]) -> dict[str, Any]:
    """A stream call's content: plain `markdown_text` unless it carries a task card."""
    if len(chunks) == 1 and chunks[0]["type"] == "markdown_text":
        return {"markdown_text": chunks[0]["text"]}
    return {"chunks": chunks} if chunks else {}


class _Refused(Exception):
    def __init__(self, error: str, *, whole_team: bool) -> None:
        super().__init__(error)
        self.error = error
        self.whole_team = whole_team


class _StillStreaming(SurfaceError):
    """The message is a native stream nobody stopped."""
