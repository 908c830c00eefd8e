"""Approvals: a tool that acts on the world runs only after its asker says yes, once.

While a reply waits, its buttons are Approve, Deny and Stop (each with the reply's turn id). The
first answer from the asker, on the reply's own platform and tenant, decides; anyone else is
told so and changes nothing; a second click finds nothing waiting. No answer within the
timeout is an expiry. All three outcomes go back to the model as the tool's result.

Waiting approvals live in this process, with the reply that asks (a restart ends that reply,
and its buttons with it).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from enum import StrEnum

from bot.domain import Actor

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


class Approvals:
    """The replies of this process waiting for an approval, by turn id."""

    def __init__(self, timeout: float = APPROVAL_SECONDS) -> None:
        self.timeout = timeout
        self._waiting: dict[int, _Waiting] = {}

    async def ask(self, turn_id: int, asker: Actor) -> Answer:
        """Wait for the asker's answer to the call the reply `turn_id` shows (at most
        `timeout` seconds)."""
        future: asyncio.Future[Answer] = asyncio.get_running_loop().create_future()
        self._waiting[turn_id] = _Waiting(asker, future)
        try:
            return await asyncio.wait_for(asyncio.shield(future), self.timeout)
        except TimeoutError:
            return Answer.EXPIRED
        finally:
            del self._waiting[turn_id]
            if not future.done():
                future.cancel()

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
