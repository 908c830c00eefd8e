"""Buttons beside an append-only stream: a small message of their own holds them.

A surface that streams natively (Slack's chat.startStream) cannot put buttons on the stream until
it stops, so Stop, and Approve / Deny while a tool call waits, live in a note posted beside it,
deleted when the reply ends. Before the stream has text the note also says what the model does
("thinking… 12 s"). Which buttons go there, the words, the retries and what is left when the note
cannot be deleted are decided here; the surface posts, edits and deletes the note's message.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Protocol

from bot.ports import Control, RateLimited, SurfaceError

log = logging.getLogger("parley.streaming")

NOTE_LINE = "Replying…"
"""The note's line while the reply streams."""
NOTE_DONE = "Reply finished."
"""What a note that could not be deleted says once its buttons are gone."""
NOTE_ATTEMPTS = 3
"""Posts of the note, a 429 waited out between them."""
ON_NOTE = ("approve", "deny", "stop")


class NoteMessages(Protocol):
    """The platform's side: one message, posted, edited and deleted."""

    async def post_note(self, line: str, controls: tuple[Control, ...]) -> str: ...

    async def edit_note(self, ref: str, line: str, controls: tuple[Control, ...]) -> None: ...

    async def delete_note(self, ref: str) -> None: ...


def on_note(controls: tuple[Control, ...]) -> tuple[Control, ...]:
    """The buttons the note holds: Stop, and Approve / Deny while a call waits."""
    return tuple(c for c in controls if c.action in ON_NOTE)


class ControlsNote:
    """The note of one reply: posted once the stream starts, following its buttons, removed at
    its end."""

    def __init__(self, messages: NoteMessages) -> None:
        self._messages = messages
        self.ref: str | None = None
        self.line = NOTE_LINE
        self.controls: tuple[Control, ...] = ()
        self._posting: asyncio.Task[None] | None = None
        self._waiting = False

    @property
    def shown(self) -> bool:
        """Posted, or being posted."""
        return self.ref is not None or self._posting is not None

    def post_beside(self, controls: tuple[Control, ...]) -> None:
        """The stream started: post the note beside it, not before its next append (a 429 on
        the note is waited out there)."""
        if not self.shown:
            self._posting = asyncio.create_task(self._post(controls))

    async def follow(self, controls: tuple[Control, ...]) -> None:
        """The reply's buttons changed (Approve / Deny come and go): the note's follow."""
        if self.ref is not None and on_note(controls) != self.controls:
            await self._edit(self.line, on_note(controls))

    async def say(self, line: str, controls: tuple[Control, ...] = ()) -> None:
        """Before the stream has text, what the model does (posted early, so Stop works while it
        thinks); "" puts the note's line back."""
        if not line:
            if self.ref is not None and self.line != NOTE_LINE:
                await self._edit(NOTE_LINE, self.controls)
            return
        if self._posting is not None:
            return  # still being posted
        if self.ref is None:
            await self._post(controls, line)
        else:
            await self._edit(line, on_note(controls))

    async def _edit(self, line: str, controls: tuple[Control, ...]) -> None:
        assert self.ref is not None
        await self._messages.edit_note(self.ref, line, controls)
        self.line, self.controls = line, controls

    async def _post(self, controls: tuple[Control, ...], line: str = NOTE_LINE) -> None:
        """A 429 is waited out and the post retried (NOTE_ATTEMPTS in all); other failures
        leave the reply without its buttons."""
        stop = on_note(controls)
        if not stop or self.ref is not None:
            return
        for attempt in range(1, NOTE_ATTEMPTS + 1):
            try:
                self.ref = await self._messages.post_note(line, stop)
            except RateLimited as exc:
                if attempt == NOTE_ATTEMPTS:
                    log.warning("no Stop button: rate limited %d times", attempt)
                    return
                self._waiting = True
                try:
                    await asyncio.sleep(exc.retry_after)
                finally:
                    self._waiting = False
                continue
            except SurfaceError as exc:
                log.warning("no Stop button beside the stream: %s", exc)
                return
            self.controls, self.line = stop, line
            return

    async def remove(self) -> None:
        """The reply ended: delete the note, or at least take its buttons away."""
        task, self._posting = self._posting, None
        if task is not None and not task.done():
            if self._waiting:  # waiting out a 429: nothing posted, nothing to post now
                task.cancel()
            await asyncio.wait([task])  # else its post is on the wire: wait, then delete it
        ref, self.ref = self.ref, None
        if ref is None:
            return
        try:
            await self._messages.delete_note(ref)
            return
        except SurfaceError as exc:
            log.warning("could not delete the Stop note: %s", exc)
        try:
            await self._messages.edit_note(ref, NOTE_DONE, ())
        except SurfaceError as exc:
            log.warning("Stop note left in place: %s", exc)
