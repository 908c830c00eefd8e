"""Stream one reply onto a Surface by posting and editing messages, within the platform's limits.

The producer calls `update(full_text)` as often as it likes and never waits on the platform. One
worker task owns all platform calls of the reply, so at most one is in flight: it shows the newest
text only, skips frames that would not change what is on screen, paces edits per message, backs
off on rate limits, and continues in a new message when the text outgrows one. `finish` stops the
worker and delivers the final text, which is never dropped.

Every call says whether its text is the message's last (`final`: a part the reply has moved
past, or the finished reply) or an interim frame; the surface's limits say whether it can delete
(messages the final text no longer needs go, else they show "…") and whether it can only append
(then a streaming message is sent only the text that can no longer change).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from bot.clock import SYSTEM_CLOCK, Clock
from bot.engine.splitting import (
    MIN_BUDGET,
    close_fence,
    layout,
    render_live,
    settled_prefix,
    showable,
    split_parts,
)
from bot.ops.stream_stats import StreamStats
from bot.ports import Control, Deferred, MessageRef, RateLimited, Surface, SurfaceError

log = logging.getLogger(__name__)

EMPTY_REPLY = "_(empty reply)_"
"""Shown when a reply ends with no text and no notice: the user never sees nothing."""

RETIRED = "…"
"""Left in a message the final text no longer needs where the Surface cannot delete it."""

STATUS_INTERVAL = 2.0
"""Least seconds between two status lines on a surface that shows them apart from the reply
(where a status costs a platform call it shares with the reply's own)."""

_BACKOFF_FACTOR = 1.5
_BACKOFF_FLOOR = 0.25
"""Seconds: the least wait after a rate limit, and where the edit interval grows from when
pacing was off (cheap edits)."""


@dataclass(slots=True)
class _Message:
    ref: MessageRef
    text: str | None  # None when an edit failed and what the platform shows is unknown
    controls: tuple[Control, ...]
    last_call: float
    """When the message's last call went out."""
    final: bool = False
    deleted: bool = False


@dataclass(frozen=True, slots=True)
class _Want:
    text: str
    controls: tuple[Control, ...]
    visible: bool = True  # False for the placeholder
    final: bool = False  # the message's settled text


@dataclass(frozen=True, slots=True)
class _Step:
    kind: Literal["post", "edit", "delete"]
    index: int
    want: _Want


class ReplyStreamer:
    """Drives one Surface for one reply. Not reusable: one streamer per reply."""

    def __init__(
        self,
        surface: Surface,
        *,
        clock: Clock = SYSTEM_CLOCK,
        streaming_controls: tuple[Control, ...] = (),
        final_controls: tuple[Control, ...] = (),
        marker: str = " ▌",
        placeholder: str | None = None,
        final_attempts: int = 10,
        max_interim_failures: int = 3,
        key: str = "",
        shown: Sequence[MessageRef] = (),
    ) -> None:
        """`shown`: messages of this reply already on screen, showing who knows what (a reply
        taken over after a restart); they are rewritten, in order, before anything is posted."""
        limits = surface.limits
        self._surface = surface
        self._clock = clock
        self._streaming_controls = streaming_controls
        self._final_controls = final_controls
        self._marker = "" if limits.append_only else marker  # appended, it could not go again
        self._placeholder = placeholder or None
        self._final_attempts = final_attempts
        self._max_interim_failures = max_interim_failures
        self._key = key
        # Room for the marker (and the newline it may need) in every part, streamed or final, so
        # that the parts sealed while streaming are exactly the parts of the final text.
        self._budget = limits.max_chars - (len(self._marker) + 1 if self._marker else 0)
        if self._budget < MIN_BUDGET:
            raise ValueError(f"max_chars {limits.max_chars} leaves no room for text and marker")
        self._can_delete = limits.can_delete
        self._append_only = limits.append_only
        self._max_chars = limits.max_chars
        self._backoff = 0.0
        """The least interim interval after rate limits (grows with each; the surface's own
        interval, read before every call, counts when it is longer)."""
        self._blocked_until = float("-inf")
        self._turn_at = float("-inf")
        """When the surface's budget has this reply's turn for an interim call (Deferred); the
        final text does not wait for it (the surface claims its budget's next slot for it,
        ahead of the turns in line)."""
        self._text = ""
        self._frame: tuple[str, list[_Want]] | None = None
        self._messages = [_Message(ref, None, (), float("-inf")) for ref in shown]
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._in_call = False
        self._stopping = False
        self._state: Literal["new", "streaming", "finishing", "done", "closed"] = "new"
        self._failures = 0
        self._status = ""
        """What the model is doing while there is no text yet ("thinking… 12 s"), or ""."""
        self._status_shown = ""
        self._status_at = float("-inf")
        self.stats = StreamStats()

    @property
    def refs(self) -> list[MessageRef]:
        """The messages of the reply so far, in order (not those deleted)."""
        return [m.ref for m in self._messages if not m.deleted]

    def start(self) -> None:
        """Start the worker; posts the placeholder at once if there is one. Idempotent."""
        if self._state != "new":
            return
        self._state = "streaming"
        self.stats.started_at = self._clock.now()
        self._task = asyncio.get_running_loop().create_task(self._run(), name="reply-streamer")

    def update(self, text: str) -> None:
        """Show `text` (the whole reply so far) as soon as pacing allows. Never blocks."""
        if self._state == "new":
            self.start()
        if self._state != "streaming":
            return  # a late token after finish or close; the final text is already decided
        self._text = text.strip()
        if self._text:
            self._status = ""
        self._wake.set()

    def think(self, line: str) -> None:
        """The model works on its answer and has no text yet: show `line` ("thinking… 12 s")
        where the reply will appear, or, on a surface that can only append, as its status.
        Ignored once the reply has text."""
        if self._state == "new":
            self.start()
        if self._state != "streaming" or self._text:
            return
        self._status = line
        self._wake.set()

    def set_controls(self, controls: tuple[Control, ...]) -> None:
        """The buttons of the streaming message from now on (Approve / Deny while a tool call
        waits for its asker)."""
        self._streaming_controls = controls
        self._frame = None
        self._wake.set()

    async def finish(self, text: str, notice: str | None = None) -> list[MessageRef]:
        """Deliver the final text (plus `notice` after a blank line) and return all message refs.

        Interim frames are dropped; rate limits are waited out up to `final_attempts` times, then
        re-raised; any other SurfaceError is raised at once.
        """
        if self._state == "closed":
            raise RuntimeError("finish() after close()")
        self._state = "finishing"
        if self.stats.started_at is None:
            self.stats.started_at = self._clock.now()
        await self._stop_worker(cancel_call=False)
        self._status = ""
        if self._status_shown:
            await self._show_status()
        wants = self._final_frame(text, notice)
        attempts = 0
        while (step := self._next_step(wants)) is not None:
            wait = self._due(step, final=True) - self._clock.now()
            if wait > 0:
                await self._clock.sleep(wait)
            try:
                await self._apply(step)
            except RateLimited as exc:
                self._rate_limited(exc)
                attempts += 1
                if attempts >= self._final_attempts:
                    raise
        self._state = "done"
        return self.refs

    async def close(self) -> None:
        """Stop the worker at once, even mid-call, and leave the messages as they are."""
        if self._state != "done":
            self._state = "closed"
        await self._stop_worker(cancel_call=True)

    async def __aenter__(self) -> ReplyStreamer:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    # --- the worker -----------------------------------------------------------------------------

    async def _run(self) -> None:
        while not self._stopping:
            if self._status_due():
                await self._show_status()
                continue
            step = self._next_step(self._interim_frame())
            if step is None:
                self._wake.clear()
                await self._wake.wait()
                continue
            wait = self._due(step, final=False) - self._clock.now()
            if wait > 0:
                await self._clock.sleep(wait)
                continue  # the text may have moved on while we waited: recompute
            try:
                await self._apply(step)
            except RateLimited as exc:
                self._rate_limited(exc)
            except SurfaceError as exc:
                if self._interim_failed(step, exc):
                    return
            else:
                self._failures = 0

    async def _stop_worker(self, *, cancel_call: bool) -> None:
        task = self._task
        if task is None:
            return
        self._stopping = True
        if not task.done() and (cancel_call or not self._in_call):
            task.cancel()  # it is waiting for text or for its pacing deadline, or we abort
        await asyncio.wait([task])
        self._task = None
        if task.cancelled():
            return
        crash = task.exception()
        if crash is None:
            return
        if cancel_call:
            log.error("reply %s: streamer worker failed", self._key, exc_info=crash)
        else:
            raise crash

    def _interim_failed(self, step: _Step, exc: SurfaceError) -> bool:
        """Note a failed interim call; True when the worker should leave the rest to `finish`."""
        self.stats.errors += 1
        self._failures += 1
        if step.kind == "edit":
            self._messages[step.index].text = None  # unknown now: resend at the next frame
        # Wait a full interval before the retry so a persistent error cannot spin.
        retry_at = self._clock.now() + max(self._interval(final=False), _BACKOFF_FLOOR)
        self._blocked_until = max(self._blocked_until, retry_at)
        if self._failures >= self._max_interim_failures:
            log.warning(
                "reply %s: %d interim %ss failed in a row, waiting for the final text: %s",
                self._key,
                self._failures,
                step.kind,
                exc,
            )
            return True
        log.warning("reply %s: interim %s failed, retrying: %s", self._key, step.kind, exc)
        return False

    # --- what to show ---------------------------------------------------------------------------

    def _interim_frame(self) -> list[_Want]:
        text = self._text
        key = text or f"\0{self._status}"
        if self._frame is not None and self._frame[0] == key:
            return self._frame[1]
        wants: list[_Want] = []
        if not text:
            if self._status and not self._append_only:
                wants.append(_Want(f"_{self._status}_", self._streaming_controls, visible=False))
            elif self._placeholder:
                wants.append(_Want(self._placeholder, self._streaming_controls, visible=False))
        else:
            lay = layout(text, self._budget)
            parts = showable(lay.sealed)
            live = lay.tail
            if not live.body.strip() and parts:
                # Nothing to show after the last break yet: that part stays live until there is.
                live = parts.pop()
            wants = [_Want(part.text, (), final=True) for part in parts]
            shown = render_live(live, self._marker)
            if self._append_only:  # what is sent cannot be taken back: only the settled part
                shown = settled_prefix(shown, self._max_chars, live.opener)
            wants.append(_Want(shown, self._streaming_controls, visible=bool(shown.strip())))
        self._frame = (key, wants)
        return wants

    def _final_frame(self, text: str, notice: str | None) -> list[_Want]:
        body = text.strip()
        note = (notice or "").strip()
        if body and note:
            # Close a fence the reply left open, or the notice would render as code.
            body = f"{close_fence(body)}\n\n{note}"
        body = body or note or EMPTY_REPLY
        parts = showable(split_parts(body, self._budget))
        wants = [_Want(part.text, (), final=True) for part in parts]
        wants[-1] = _Want(wants[-1].text, self._final_controls, final=True)
        # Only a final text that rewrites the streamed one can need fewer messages than posted:
        # they are deleted where the surface can (_next_step), else emptied to "…".
        if not self._can_delete:
            extra = range(len(wants), len(self._messages))
            wants += [_Want(RETIRED, (), final=True) for _ in extra]
        return wants

    def _next_step(self, wants: list[_Want]) -> _Step | None:
        """The first message, in order, that does not show what it should."""
        for index, want in enumerate(wants):
            if index >= len(self._messages):
                return _Step("post", index, want)
            message = self._messages[index]
            if message.text != want.text or message.controls != want.controls:
                return _Step("edit", index, want)
            if want.final and not message.final and self._append_only:
                return _Step("edit", index, want)  # settled: its stream can end
        if self._state == "finishing" and self._can_delete:
            for index in range(len(wants), len(self._messages)):
                if not self._messages[index].deleted:
                    return _Step("delete", index, _Want("", (), final=True))
        return None

    def _due(self, step: _Step, *, final: bool) -> float:
        """When `step` may go out: after any rate-limit wait, and an edit its interval after the
        previous call on the same message, as the surface's limits say now."""
        blocked = self._blocked_until if final else max(self._blocked_until, self._turn_at)
        if step.kind != "edit":
            return blocked
        interval = self._interval(final=final)
        return max(blocked, self._messages[step.index].last_call + interval)

    def _interval(self, *, final: bool) -> float:
        """The surface's interval now (it may learn it from the platform as the reply goes):
        for the final text its own, which ignores backoff; for an interim frame at least the
        backoff that rate limits grew."""
        limits = self._surface.limits
        if limits.edits_cheap:
            return 0.0
        if final:
            return (
                limits.min_edit_interval if limits.final_interval is None else limits.final_interval
            )
        return max(limits.min_edit_interval, self._backoff)

    def _status_due(self) -> bool:
        """A surface that can only append shows the status apart from the reply: a new line at
        most every STATUS_INTERVAL, and its end at once (before the reply's first text)."""
        if not self._append_only or self._status == self._status_shown:
            return False
        if not self._status:
            return True
        limits = self._surface.limits
        interval = 0.0 if limits.edits_cheap else max(limits.min_edit_interval, STATUS_INTERVAL)
        return self._clock.now() >= self._status_at + interval

    # --- platform calls -------------------------------------------------------------------------

    async def _show_status(self) -> None:
        """Best effort: a status that fails is not retried until the next line."""
        line = self._status
        self._status_shown, self._status_at = line, self._clock.now()
        self._in_call = True
        try:
            await self._surface.status(line, self._streaming_controls if line else ())
        except SurfaceError as exc:
            log.info("reply %s: status not shown: %s", self._key, exc)
        finally:
            self._in_call = False

    async def _apply(self, step: _Step) -> None:
        want = step.want
        # A platform counts a call when it arrives: pace from when each call went out, not from
        # when its answer came back (else every interval grows by a round trip).
        sent = self._clock.now()
        self._in_call = True
        try:
            if step.kind == "post":
                ref = await self._surface.post(want.text, want.controls, final=want.final)
            elif step.kind == "edit":
                ref = self._messages[step.index].ref
                await self._surface.edit(ref, want.text, want.controls, final=want.final)
            else:
                await self._surface.delete(self._messages[step.index].ref)
        finally:
            self._in_call = False
        now = self._clock.now()
        if step.kind == "post":
            self._messages.append(_Message(ref, want.text, want.controls, sent, want.final))
            self.stats.posts += 1
        elif step.kind == "delete":
            self._messages[step.index].deleted = True
            self.stats.deletes += 1
            return
        else:
            message = self._messages[step.index]
            message.text, message.controls, message.last_call = want.text, want.controls, sent
            message.final = want.final
            self.stats.edits += 1
        if want.visible and self.stats.first_visible_at is None:
            self.stats.first_visible_at = now

    def _rate_limited(self, exc: RateLimited) -> None:
        """Wait at least retry_after before any call, and space edits out further from now on
        (only the wait for a call the bot's own budget deferred: the pace was not too fast)."""
        now = self._clock.now()
        if isinstance(exc, Deferred):
            self.stats.deferred += 1
            self._turn_at = now + max(exc.retry_after, 0.0)
            return
        self.stats.rate_limited += 1
        # The floor keeps a platform that says "retry after 0" from being hammered in a loop.
        wait = max(exc.retry_after, _BACKOFF_FLOOR)
        self._blocked_until = max(self._blocked_until, now + wait)
        limits = self._surface.limits
        grown = max(self._interval(final=False), _BACKOFF_FLOOR) * _BACKOFF_FACTOR
        ceiling = max(limits.max_backoff, limits.min_edit_interval)
        self._backoff = max(self._backoff, min(ceiling, grown))
        log.info(
            "reply %s: rate limited, retry after %.2fs, edit interval now %.2fs",
            self._key,
            exc.retry_after,
            self._interval(final=False),
        )
