"""Approvals: a tool that acts on the world runs only after its asker says yes, once.

While a reply waits, its buttons are Approve, Deny and Stop (each with the reply's turn id). The
first answer from the asker, on the reply's own platform and tenant, decides; anyone else is
told so and changes nothing; a second click finds nothing waiting. No answer within the
timeout is an expiry. All three outcomes go back to the model as the tool's result.

Waiting approvals live in this process, with the reply that asks (a restart ends that reply,
and its buttons with it). With a `board` (the store), a waiting call is also marked there, so a
click that reaches another replica can answer it (TurnStore.answer; the keeper brings the answer
here: `answer_from_elsewhere`).
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol

from sqlalchemy.exc import SQLAlchemyError

from bot.domain import Actor
from bot.store import StoreError

log = logging.getLogger("parley.chat")

APPROVAL_SECONDS = 300.0
"""How long a tool call waits for its asker's answer."""


class Answer(StrEnum):
    APPROVED = "approved"
    DENIED = "denied"
    EXPIRED = "expired"
    CLOSED = "closed"
    """Parley is shutting down: nobody can answer any more."""


class Answered(StrEnum):
    TAKEN = "taken"
    NOT_YOURS = "not_yours"
    NOT_WAITING = "not_waiting"


@dataclass(slots=True)
class _Waiting:
    asker: Actor
    answer: asyncio.Future[Answer]


class Board(Protocol):
    async def set_waiting(self, message_id: int, waiting: bool) -> None: ...


class Approvals:
    """The replies of this process waiting for an approval, by turn id."""

    def __init__(self, timeout: float = APPROVAL_SECONDS, board: Board | None = None) -> None:
        self.timeout = timeout
        self._waiting: dict[int, _Waiting] = {}
        self._board = board

    async def ask(self, turn_id: int, asker: Actor) -> Answer:
        """Wait for the asker's answer to the call the reply `turn_id` shows (at most
        `timeout` seconds)."""
        future: asyncio.Future[Answer] = asyncio.get_running_loop().create_future()
        self._waiting[turn_id] = _Waiting(asker, future)
        # Shielded: a Stop meanwhile must not cut the write off halfway (SQLAlchemy would drop
        # the connection), and it goes out before the mark is taken back.
        marking = asyncio.ensure_future(self._mark(turn_id, True))
        try:
            await asyncio.shield(marking)
            return await asyncio.wait_for(asyncio.shield(future), self.timeout)
        except TimeoutError:
            return Answer.EXPIRED
        finally:
            del self._waiting[turn_id]
            if not future.done():
                future.cancel()
            await asyncio.wait({marking})
            await asyncio.shield(self._mark(turn_id, False))

    async def _mark(self, turn_id: int, waiting: bool) -> None:
        """Best effort: a store that cannot write leaves the call answerable here only."""
        if self._board is None:
            return
        try:
            await self._board.set_waiting(turn_id, waiting)
        except (SQLAlchemyError, OSError, StoreError) as exc:
            log.warning("approval not shared with other replicas: %s", type(exc).__name__)

    def answer_from_elsewhere(self, turn_id: int, yes: bool) -> None:
        """The asker's answer, taken by another replica (which checked the clicker)."""
        waiting = self._waiting.get(turn_id)
        if waiting is not None and not waiting.answer.done():
            waiting.answer.set_result(Answer.APPROVED if yes else Answer.DENIED)

    def answer(self, turn_id: int, clicker: Actor, yes: bool) -> Answered:
        waiting = self._waiting.get(turn_id)
        if waiting is None or waiting.answer.done():
            return Answered.NOT_WAITING
        if clicker != waiting.asker:
            return Answered.NOT_YOURS
        waiting.answer.set_result(Answer.APPROVED if yes else Answer.DENIED)
        return Answered.TAKEN

    def close(self) -> None:
        """Shutting down: every waiting call is answered CLOSED, and new ones at once."""
        self.timeout = 0.0
        for waiting in self._waiting.values():
            if not waiting.answer.done():
                waiting.answer.set_result(Answer.CLOSED)

    def waiting(self, turn_id: int) -> bool:
        return turn_id in self._waiting
