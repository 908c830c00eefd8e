"""TurnKeeper: this process's claim on the turns it runs, and the recovery of turns nobody runs.

Every turn a process streams is stored `streaming` under the process's owner id with a lease.
While any run, the keeper wakes every few seconds and, in one transaction for all of them, renews
the leases and saves what each turn has generated so far and which platform messages show it. If
the process dies (a crash, `kill -9`, a lost machine), the leases run out: then, and only then,
`recover` takes the turns as interrupted and bills what they had generated, and the adapters
finish their messages (ChatEngine.finish_interrupted). A replica that starts while another runs
takes none of that one's live turns. A process restarted on the same machine need not wait for
the leases: owner ids name the machine and pid, and a pid that no longer runs is certainly gone.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import secrets
import socket
from collections.abc import Callable
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

from sqlalchemy.exc import SQLAlchemyError

from bot.catalog import Catalog, UnknownModel
from bot.clock import SYSTEM_CLOCK, Clock
from bot.engine.history import estimate_tokens
from bot.llm.types import Usage
from bot.store import Store, StoreError
from bot.store.records import (
    InterruptedTurn,
    StoredMessage,
    TurnProgress,
    TurnResult,
    UsageEntry,
)
from bot.store.turns_repo import Marks, TurnStore

log = logging.getLogger("parley.chat")

TURN_LEASE_SECONDS = 30.0
"""How long a turn stays its process's without a heartbeat; past it, another process may take it
(a crashed process's replies are finished about this long after it died)."""
SAVE_EVERY = 2.0
"""Seconds between heartbeats (at most; a third of the lease when that is shorter)."""

STOP_POLL = 0.5
"""Seconds between looks for Stop, Approve or Deny pressed on another replica (marks in the
store: TurnStore.request_stop, .answer) while this process runs turns: a primary-key read of the
ids it runs."""

SAVE_CHUNK = 25
"""Turns saved per transaction in a heartbeat: small, so a user's message waits at most for one
short transaction (SQLite's one writer) or one short burst of the event loop (building the rows);
at 100, appends meanwhile had a p99 over 5 ms on PostgreSQL (bench persist)."""

Progress = Callable[[], TurnProgress]


def _this_pid_space() -> str:
    """Where a pid means one process: this boot of this machine, in this pid namespace. Two
    containers may share a hostname, but never a pid namespace."""
    parts = [socket.gethostname()]
    try:
        parts.append(Path("/proc/sys/kernel/random/boot_id").read_text().strip())
        parts.append(os.readlink("/proc/self/ns/pid"))
    except OSError:
        parts.append(secrets.token_hex(8))  # no way to tell: never call another's pid gone
    return hashlib.sha256("|".join(parts).encode()).hexdigest()[:8]


_HOST = _this_pid_space()
"""This pid space, as it appears in owner ids (at most 32 characters with pid and random)."""
_OWNERS_HERE: set[str] = set()
"""Owner ids of the keepers of this process (tests run several engines in one process)."""


class TurnKeeper:
    """Leases and saved progress of this process's running turns; recovery of abandoned ones."""

    def __init__(
        self,
        store: Store,
        catalog: Catalog,
        *,
        clock: Clock = SYSTEM_CLOCK,
        lease_seconds: float = TURN_LEASE_SECONDS,
        stop_poll: float = STOP_POLL,
    ) -> None:
        self.owner = f"{_HOST}.{os.getpid()}.{secrets.token_hex(4)}"
        """This process's id on the turns it runs, new at every start: pid space, pid, random."""
        _OWNERS_HERE.add(self.owner)
        self.lease = timedelta(seconds=lease_seconds)
        self.interval = min(SAVE_EVERY, lease_seconds / 3)
        self._turns = TurnStore(store)
        self._catalog = catalog
        self._clock = clock
        self._live: dict[int, Progress] = {}
        self._saved: dict[int, tuple[int, int]] = {}
        self._task: asyncio.Task[None] | None = None
        self._failing = False
        self.stop_poll = stop_poll
        self.on_stop: Callable[[int], None] | None = None
        """Told each running turn marked for Stop elsewhere (the engine's RunningTurns)."""
        self.on_answer: Callable[[int, bool], None] | None = None
        """Told each answer given elsewhere to a tool call a running turn waits on (the
        engine's Approvals), once."""
        self._watcher: asyncio.Task[None] | None = None

    def track(self, turn_id: int, progress: Progress) -> None:
        """Keep `turn_id` leased and its progress saved until `untrack`."""
        self._live[turn_id] = progress
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._keep(), name="turn-keeper")
        if self._watcher is None or self._watcher.done():
            self._watcher = asyncio.create_task(self._watch_stops(), name="turn-stops")

    def untrack(self, turn_id: int) -> None:
        self._live.pop(turn_id, None)
        self._saved.pop(turn_id, None)

    async def finish(self, turn_id: int, result: TurnResult, usage: UsageEntry | None) -> bool:
        """Store the ended turn and its usage line at once; False if it was no longer ours."""
        done = await self._turns.finish(turn_id, self.owner, result, usage)
        if not done:
            log.warning("turn %s was taken over before it ended: not stored again", turn_id)
        return done

    async def recover(self) -> list[InterruptedTurn]:
        """Take over the turns whose process is gone, billed for what they made: those whose
        lease ran out, and at once those of a process of this machine that no longer runs."""
        gone = [owner for owner in await self._turns.owners() if self._gone(owner)]
        found = await self._turns.recover(self._bill, gone)
        for turn in found:
            log.warning(
                "turn interrupted by restart message_id=%s conversation_id=%s chars=%d",
                turn.message.id,
                turn.message.conversation_id,
                len(turn.message.content),
            )
        return found

    async def close(self) -> None:
        tasks = [t for t in (self._task, self._watcher) if t is not None]
        self._task = self._watcher = None
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def _watch_stops(self) -> None:
        while self._live:
            await self._clock.sleep(self.stop_poll)
            if self._live:
                await self.look_for_marks()

    async def set_waiting(self, turn_id: int, waiting: bool) -> None:
        """A tool call of `turn_id` waits for its asker (or no longer does), for other replicas
        to see (Approvals' board)."""
        await self._turns.set_waiting(turn_id, waiting)

    async def look_for_marks(self) -> Marks:
        """Hand what other replicas marked on the running turns to `on_stop` and `on_answer`
        (an answer is taken once); a store that cannot answer is asked again at the next look."""
        try:
            marks = await self._turns.marks_among(list(self._live))
            for turn_id in marks.stops:
                if turn_id in self._live and self.on_stop is not None:
                    self.on_stop(turn_id)
            for turn_id, approved in marks.answers.items():
                if await self._turns.take_answer(turn_id) and self.on_answer is not None:
                    self.on_answer(turn_id, approved)
        except (SQLAlchemyError, OSError, StoreError) as exc:
            log.debug("could not look for marks from other replicas: %s", type(exc).__name__)
            return Marks()
        return marks

    async def _keep(self) -> None:
        while self._live:
            await self._clock.sleep(self.interval)
            if not self._live:
                return
            await self.beat()

    async def beat(self) -> None:
        """Renew every lease and save the progress that changed since the last beat."""
        changed: list[TurnProgress] = []
        marks: dict[int, tuple[int, int]] = {}
        for turn_id, progress in list(self._live.items()):
            now = progress()
            mark = (len(now.content), len(now.refs))
            if self._saved.get(turn_id) != mark:
                changed.append(now)
                marks[turn_id] = mark
        try:
            # In chunks, each its own transaction: SQLite has one writer, and a thousand rows
            # at once would hold every other write (a user's message, a finished reply) back.
            for start in range(0, max(len(changed), 1), SAVE_CHUNK):
                chunk = changed[start : start + SAVE_CHUNK]
                # The others' leases once, with the first chunk.
                await self._turns.heartbeat(self.owner, self.lease, chunk, renew=start == 0)
        except (SQLAlchemyError, OSError, StoreError) as exc:
            # Retried at the next beat; the lease holds for several beats.
            if not self._failing:
                log.warning("could not renew turn leases (retrying): %s", type(exc).__name__)
            self._failing = True
            return
        if self._failing:
            log.info("turn leases renewed again")
        self._failing = False
        for turn_id, mark in marks.items():
            if turn_id in self._live:
                self._saved[turn_id] = mark

    def _gone(self, owner: str) -> bool:
        """True only when `owner` certainly runs nothing: a process of this machine and pid
        namespace that has exited (or whose pid is ours now). Anything else (another machine or
        container, an unrelated process that took the pid) waits for its lease."""
        host, _, rest = owner.partition(".")
        pid_text, _, _ = rest.partition(".")
        if owner in _OWNERS_HERE or host != _HOST or not pid_text.isascii():
            return False
        try:
            pid = int(pid_text)
        except ValueError:
            return False
        if pid == os.getpid():
            return True
        try:
            os.kill(pid, 0)  # signal 0: only asks whether the process exists
        except ProcessLookupError:
            return True
        except (PermissionError, OSError):
            return False  # it exists (another user's), or we cannot tell
        return False

    def _bill(self, turn: StoredMessage) -> tuple[int, int, Decimal | None]:
        """What an interrupted turn costs: its prompt (as estimated when it started) and the
        text it had generated. Nothing when no provider had answered yet."""
        if turn.provider is None:
            return 0, 0, None
        prompt = turn.prompt_tokens or 0
        completion = estimate_tokens(turn.content) if turn.content else 0
        try:
            entry = self._catalog.resolve(turn.model) if turn.model else None
        except UnknownModel:
            entry = None
        cost = entry.cost(Usage(prompt, completion)) if entry is not None else None
        return prompt, completion, cost
