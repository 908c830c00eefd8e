"""The turns this process is running: Stop finds them here, shutdown cuts them off and waits.

A reply is registered while its provider stream is pumped (`RunningTurns.track`) and counted as
busy until it is stored (`RunningTurns.storing`), so a graceful shutdown waits for both.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from enum import StrEnum

from bot.store.records import StoredMessage
from bot.store.turns_repo import FINISH_RESTART

STOP_FINISHED = "That reply has already finished."
STOP_INTERRUPTED = "That reply was cut off by a restart; it has already ended."
STOP_ABANDONED = "That reply was cut off by a restart; Parley is closing it now."


def why_not_running(turn: StoredMessage) -> str:
    """What Stop says about a reply this process is not running (after StopResult.NOT_RUNNING)."""
    if turn.status == "streaming":  # its process died; recovery has not taken it yet
        return STOP_ABANDONED
    if turn.finish_reason == FINISH_RESTART:  # not a Stop, which also ends `interrupted`
        return STOP_INTERRUPTED
    return STOP_FINISHED


class StopResult(StrEnum):
    STOPPED = "stopped"
    NOT_RUNNING = "not_running"
    NOT_YOURS = "not_yours"


@dataclass(slots=True)
class Running:
    task: asyncio.Task[None]
    user_id: str
    stopped: bool = False
    shutdown: bool = False


class RunningTurns:
    def __init__(self) -> None:
        self._running: dict[int, Running] = {}
        self._storing: set[asyncio.Future[None]] = set()

    @contextmanager
    def track(self, message_id: int, task: asyncio.Task[None], user_id: str) -> Iterator[Running]:
        running = Running(task, user_id)
        self._running[message_id] = running
        try:
            yield running
        finally:
            self._running.pop(message_id, None)

    @asynccontextmanager
    async def storing(self) -> AsyncIterator[None]:
        """A turn from its start until it is stored (shutdown waits for it)."""
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._storing.add(done)
        try:
            yield
        finally:
            self._storing.discard(done)
            done.set_result(None)

    def stop(self, message_id: int, user_id: str) -> StopResult:
        """The asker's Stop: the provider stream is cancelled; what it said stays."""
        running = self._running.get(message_id)
        if running is None:
            return StopResult.NOT_RUNNING
        if running.user_id != user_id:
            return StopResult.NOT_YOURS
        running.stopped = True
        running.task.cancel()
        return StopResult.STOPPED

    def stop_requested(self, message_id: int) -> None:
        """Stop pressed on another replica, which checked that its clicker is the asker."""
        running = self._running.get(message_id)
        if running is not None and not running.stopped:
            running.stopped = True
            running.task.cancel()

    def ids(self) -> list[int]:
        return list(self._running)

    def interrupt(self) -> int:
        """Cut off every running reply (shutdown); returns how many."""
        for running in self._running.values():
            running.shutdown = True
            running.task.cancel()
        return len(self._running)

    async def wait_idle(self) -> None:
        """Until nothing is streaming or being stored; cancelling the wait leaves them running."""
        while self._running or self._storing:
            await asyncio.wait({r.task for r in self._running.values()} | set(self._storing))
