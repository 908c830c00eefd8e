"""Work a platform adapter runs beside its requests: the tasks shutdown waits for, and the
pruning of claims that make a platform's retried deliveries happen once."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Coroutine, Iterator
from datetime import timedelta
from typing import Any, Protocol

from bot.clock import SYSTEM_CLOCK, Clock

log = logging.getLogger("parley.ops")


class Background:
    """The tasks of one adapter that shutdown waits for: spawned ones (a listener's work after
    its ack) and held ones (a turn's task while it answers and links its messages)."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.tasks: set[asyncio.Task[Any]] = set()

    def spawn(self, work: Coroutine[Any, Any, None], name: str) -> None:
        """Run `work` in the background; a failure is logged, never lost."""
        task = asyncio.create_task(work, name=name)
        self.tasks.add(task)
        task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[Any]) -> None:
        self.tasks.discard(task)
        if not task.cancelled() and (exc := task.exception()) is not None:
            log.error("%s background task %s failed: %r", self.name, task.get_name(), exc)

    @contextlib.contextmanager
    def held(self) -> Iterator[None]:
        """Keep the current task among those shutdown waits for while the block runs; nested,
        the outermost block decides when it leaves."""
        task = asyncio.current_task()
        if task is None or task in self.tasks:
            yield
            return
        self.tasks.add(task)
        try:
            yield
        finally:
            self.tasks.discard(task)

    async def drain(self, grace: float, *, cancel: bool = True) -> None:
        """Wait up to `grace` seconds for the tasks; then cancel what is left (`cancel`)."""
        if not self.tasks:
            return
        _, pending = await asyncio.wait(set(self.tasks), timeout=grace)
        if cancel and pending:
            for task in pending:
                task.cancel()
            await asyncio.wait(pending)


class Claims(Protocol):
    async def forget_events_before(self, cutoff: Any, *, platform: str | None = None) -> int: ...


async def forget_claims(
    store: Claims, platform: str, keep: timedelta, clock: Clock = SYSTEM_CLOCK
) -> int:
    """Forget the platform's claims older than `keep`; returns how many."""
    return await store.forget_events_before(clock.wall() - keep, platform=platform)


async def keep_forgetting_claims(
    store: Claims, platform: str, keep: timedelta, *, every: float, clock: Clock = SYSTEM_CLOCK
) -> None:
    """forget_claims now, then every `every` seconds; a failure is logged and tried at the next."""
    while True:
        try:
            forgotten = await forget_claims(store, platform, keep, clock)
        except Exception as exc:  # the store may be briefly unavailable; never fatal
            log.warning("pruning %s claims failed: %r", platform, exc)
        else:
            if forgotten:
                log.debug("pruned %d %s claims", forgotten, platform)
        await clock.sleep(every)
