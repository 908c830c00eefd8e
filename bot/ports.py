"""What the core needs from a chat platform. Adapters implement it; the core never imports them."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal, Protocol

ControlAction = Literal["stop", "regenerate", "approve", "deny"]


@dataclass(frozen=True, slots=True)
class PlatformLimits:
    """What a Surface can do and how fast: the streamer plans every call from these."""

    max_chars: int
    """Most characters one message may hold (Discord 2,000; Slack's chat.update ~4,000)."""
    min_edit_interval: float
    """Seconds between two interim edits of one message that stay inside the platform's buckets.
    A Surface may learn it as it goes: the streamer reads `limits` again before every call."""
    final_interval: float | None = None
    """Seconds after a message's previous call before its final text may go; None: as
    `min_edit_interval`. A surface that keeps a call in hand for the final text says 0."""
    edits_cheap: bool = False
    """True where an edit costs nothing (a terminal): pacing may be skipped."""
    max_backoff: float = 30.0
    """Ceiling, in seconds, of the edit interval after repeated rate limits."""
    progress_marker: str = " ▌"
    """Appended to a reply while it streams; "" for surfaces that can only append (a terminal)."""
    can_delete: bool = False
    """Messages the final text no longer needs are deleted (else they are left showing "…")."""
    append_only: bool = False
    """A message's text can only grow while it streams (Slack's native streams): the streamer
    sends only the part of each interim frame that can no longer change."""


@dataclass(frozen=True, slots=True)
class Control:
    """A button under a message. `ref` points at a row in the store (a turn id), never at state."""

    action: ControlAction
    ref: str
    label: str = ""


@dataclass(frozen=True, slots=True)
class MessageRef:
    """Opaque handle to a posted message, as the adapter knows it."""

    id: str
    channel: str = ""


class SurfaceError(Exception):
    """A platform call failed for a reason other than a rate limit."""


class RateLimited(SurfaceError):
    """The platform asked us to slow down; retry after `retry_after` seconds."""

    def __init__(self, retry_after: float, message: str = "rate limited") -> None:
        super().__init__(f"{message} (retry after {retry_after:.2f}s)")
        self.retry_after = retry_after


class Deferred(RateLimited):
    """The bot's own budget for a platform limit has no slot for this call until `retry_after`;
    nothing was sent. Unlike a platform's 429 this says nothing about the pace being too fast."""


class Surface(Protocol):
    """One place on a platform where the bot replies: a thread, a channel, a DM or a terminal."""

    @property
    def limits(self) -> PlatformLimits: ...

    async def post(
        self, text: str, controls: tuple[Control, ...] = (), *, final: bool = False
    ) -> MessageRef:
        """Post a new message; raises RateLimited or SurfaceError. `final`: this is the
        message's settled text (a part the reply has moved past, or the finished reply), which
        must show; an interim frame may be deferred (Deferred) and is soon replaced."""
        ...

    async def edit(
        self, ref: MessageRef, text: str, controls: tuple[Control, ...] = (), *, final: bool = False
    ) -> None:
        """Replace a message's text and controls (`final` as for post); raises RateLimited or
        SurfaceError."""
        ...

    async def delete(self, ref: MessageRef) -> None:
        """Remove a message of the reply (only called where `limits.can_delete`); raises
        RateLimited or SurfaceError."""
        ...

    async def notify(self, text: str) -> None:
        """A short notice outside the reply (an error, a refusal); best effort."""
        ...

    def fold(self, label: str, text: str) -> str:
        """`text` under `label`, folded away where the platform can (a Discord spoiler, a quote
        on Slack, dim text in a terminal), to end a reply with (a model's reasoning)."""
        ...

    async def status(self, line: str, controls: tuple[Control, ...] = ()) -> None:
        """What the model is doing before the reply has text ("thinking… 12 s"), on a surface
        whose messages can only grow (`limits.append_only`): shown beside the reply, with the
        reply's `controls` (Stop) where they fit; "" when it is over. Others show the line as
        the reply's first frame and are never asked. May raise SurfaceError."""
        ...


# -- images ---------------------------------------------------------------------------------------

ImageAction = Literal["confirm", "alternative", "cancel", "regenerate"]


@dataclass(frozen=True, slots=True)
class ImageButton:
    """A button under an image quote or result. `custom_id` is stable: "img:<verb>:<id>[:<n>]"."""

    action: ImageAction
    custom_id: str
    label: str
    primary: bool = False


@dataclass(frozen=True, slots=True)
class QuoteOffer:
    """A price offered before anything is spent: the text, Generate / alternatives / Cancel."""

    quote_id: str
    text: str
    buttons: tuple[ImageButton, ...]
    expires_at: datetime


@dataclass(frozen=True, slots=True)
class ImageUpload:
    """A generated image, uploaded as a file (never a link that expires), with its caption."""

    data: bytes
    filename: str
    mime: str
    caption: str
    badges: tuple[str, ...]
    buttons: tuple[ImageButton, ...] = ()


class ImageSurface(Protocol):
    """Where the image flow talks to a user: a channel, thread or DM (adapters implement it)."""

    async def offer(self, offer: QuoteOffer) -> MessageRef:
        """Post a quote with its buttons; raises RateLimited or SurfaceError."""
        ...

    async def upload(self, image: ImageUpload) -> MessageRef:
        """Upload the image as a file; raises RateLimited or SurfaceError."""
        ...

    async def notify(self, text: str) -> None:
        """A short notice (a refusal, an expired quote, a failure); best effort."""
        ...
