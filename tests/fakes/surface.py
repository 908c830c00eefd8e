"""An in-memory Surface that keeps platform rules strictly, records every call, and misbehaves
on request: an edit bucket per message, injected failures, and call latency on a clock."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Literal

from bot.clock import Clock
from bot.ports import Control, MessageRef, PlatformLimits, RateLimited, SurfaceError

CallKind = Literal["post", "edit", "delete", "notify", "status"]
FaultTarget = Literal["post", "edit", "delete", "any"]

DISCORD_LIKE = PlatformLimits(max_chars=2000, min_edit_interval=1.0)
MAX_CONTROLS = 5  # Discord's buttons per action row
MAX_CONTROL_REF = 100  # Discord's custom_id length


@dataclass(frozen=True, slots=True)
class SurfaceEvent:
    """One call as the platform saw it; `error` is set for rejected calls."""

    kind: CallKind
    ref: MessageRef | None
    text: str
    controls: tuple[Control, ...]
    at: float
    error: SurfaceError | None = None
    final: bool = False


@dataclass(slots=True)
class StoredMessage:
    ref: MessageRef
    text: str
    controls: tuple[Control, ...]
    history: list[str] = field(default_factory=list)


class MemorySurface:
    """A strict Surface double. `events` holds accepted calls, `rejected` the refused ones."""

    def __init__(
        self,
        clock: Clock,
        limits: PlatformLimits = DISCORD_LIKE,
        *,
        latency: float = 0.0,
        edit_bucket: tuple[int, float] | None = None,
        channel: str = "memory",
    ) -> None:
        self.clock = clock
        self._limits = limits
        self.latency = latency
        self.edit_bucket = edit_bucket
        """(edits, window seconds) allowed per message; more raises RateLimited."""
        self.channel = channel
        self.events: list[SurfaceEvent] = []
        self.rejected: list[SurfaceEvent] = []
        self.messages: list[StoredMessage] = []
        self.notices: list[str] = []
        self.statuses: list[str] = []
        self.in_flight = 0
        self.max_in_flight = 0
        self._by_id: dict[str, StoredMessage] = {}
        self._faults: list[tuple[FaultTarget, SurfaceError]] = []
        self._edit_times: dict[str, deque[float]] = {}
        self._posted = 0

    @property
    def limits(self) -> PlatformLimits:
        return self._limits

    @limits.setter
    def limits(self, limits: PlatformLimits) -> None:
        """What the platform lets through from now on (a surface learning its buckets)."""
        self._limits = limits

    # --- misbehaviour on request ----------------------------------------------------------------

    def fail_next(self, error: SurfaceError, *, times: int = 1, on: FaultTarget = "any") -> None:
        """The next `times` calls of kind `on` raise `error` (in order with earlier requests)."""
        self._faults.extend((on, error) for _ in range(times))

    def rate_limit_next(self, times: int, retry_after: float, *, on: FaultTarget = "edit") -> None:
        self.fail_next(RateLimited(retry_after), times=times, on=on)

    # --- the Surface ----------------------------------------------------------------------------

    async def post(
        self, text: str, controls: tuple[Control, ...] = (), *, final: bool = False
    ) -> MessageRef:
        await self._enter("post", None, text, controls)
        ref = MessageRef(id=f"m{self._posted + 1}", channel=self.channel)
        self._posted += 1
        message = StoredMessage(ref, text, controls, [text])
        self.messages.append(message)
        self._by_id[ref.id] = message
        self.events.append(SurfaceEvent("post", ref, text, controls, self.clock.now(), None, final))
        return ref

    async def edit(
        self, ref: MessageRef, text: str, controls: tuple[Control, ...] = (), *, final: bool = False
    ) -> None:
        await self._enter("edit", ref, text, controls)
        message = self._by_id[ref.id]
        message.text, message.controls = text, controls
        message.history.append(text)
        self.events.append(SurfaceEvent("edit", ref, text, controls, self.clock.now(), None, final))

    async def delete(self, ref: MessageRef) -> None:
        """Only where the limits say the platform can (a strict fake refuses otherwise)."""
        if not self._limits.can_delete:
            raise AssertionError("delete() on a surface that declared it cannot delete")
        await self._enter("delete", ref, "", ())
        message = self._by_id.pop(ref.id)
        self.messages.remove(message)
        self.events.append(SurfaceEvent("delete", ref, "", (), self.clock.now(), None, True))

    async def notify(self, text: str) -> None:
        await self._enter("notify", None, text, ())
        self.notices.append(text)
        self.events.append(SurfaceEvent("notify", None, text, (), self.clock.now()))

    def fold(self, label: str, text: str) -> str:
        return f"[{label}: {text}]"

    async def status(self, line: str, controls: tuple[Control, ...] = ()) -> None:
        """Only where the limits say the surface can only append (a strict fake refuses
        otherwise): the others show the status as a frame of the reply."""
        if not self._limits.append_only:
            raise AssertionError("status() on a surface whose messages can be rewritten")
        await self._enter("status", None, line, controls)
        self.statuses.append(line)
        self.events.append(SurfaceEvent("status", None, line, controls, self.clock.now()))

    # --- reading what happened ------------------------------------------------------------------

    def visible_text(self, sep: str = "") -> str:
        """What the channel shows: the current text of every message, in order."""
        return sep.join(m.text for m in self.messages)

    def message(self, ref: MessageRef) -> StoredMessage:
        return self._by_id[ref.id]

    def calls(self, kind: CallKind, ref: MessageRef | None = None) -> list[SurfaceEvent]:
        """Accepted calls of one kind, optionally on one message."""
        return [e for e in self.events if e.kind == kind and (ref is None or e.ref == ref)]

    @property
    def rate_limited(self) -> int:
        return sum(isinstance(e.error, RateLimited) for e in self.rejected)

    # --- the rules ------------------------------------------------------------------------------

    async def _enter(
        self, kind: CallKind, ref: MessageRef | None, text: str, controls: tuple[Control, ...]
    ) -> None:
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            if self.latency:
                await self.clock.sleep(self.latency)
            error = self._check(kind, ref, text, controls)
        finally:
            self.in_flight -= 1
        if error is not None:
            self.rejected.append(SurfaceEvent(kind, ref, text, controls, self.clock.now(), error))
            raise error

    def _check(
        self, kind: CallKind, ref: MessageRef | None, text: str, controls: tuple[Control, ...]
    ) -> SurfaceError | None:
        for i, (target, error) in enumerate(self._faults):
            if target in ("any", kind):
                del self._faults[i]
                return error
        if kind == "delete":
            return None if ref is not None and ref.id in self._by_id else SurfaceError("404")
        if not text.strip() and not self._limits.append_only:  # a stream may start empty
            return SurfaceError("400: cannot send an empty message")
        if len(text) > self._limits.max_chars:
            return SurfaceError(
                f"400: text is {len(text)} characters; must be {self._limits.max_chars} or fewer"
            )
        if len(controls) > MAX_CONTROLS:
            return SurfaceError(f"400: {len(controls)} controls; at most {MAX_CONTROLS}")
        if any(len(c.ref) > MAX_CONTROL_REF for c in controls):
            return SurfaceError(f"400: control ref longer than {MAX_CONTROL_REF}")
        if kind == "edit":
            if ref is None or ref.id not in self._by_id:
                return SurfaceError("404: unknown message")
            return self._spend_edit(ref)
        return None

    def _spend_edit(self, ref: MessageRef) -> SurfaceError | None:
        if self.edit_bucket is None:
            return None
        allowed, window = self.edit_bucket
        now = self.clock.now()
        times = self._edit_times.setdefault(ref.id, deque())
        while times and times[0] <= now - window:
            times.popleft()
        if len(times) >= allowed:
            return RateLimited(max(times[0] + window - now, 0.001))
        times.append(now)
        return None
