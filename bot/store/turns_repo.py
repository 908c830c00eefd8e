"""Running turns: their owner's lease, the progress they save, and recovery when the owner is gone.

Part of the Store package ("the one place that runs SQL"). A `streaming` assistant turn names its
owner (one id per process, `ChatEngine.instance`) and a `lease_until` that the owner renews with
every heartbeat, a few seconds apart, in the same transaction that saves the text each running
turn has so far and the platform messages showing it. Recovery takes only turns whose lease ran
out, in one UPDATE, so two replicas never take the same turn and a replica that starts never cuts
off another's live reply; it bills what was generated in the same transaction. Finishing a turn
is guarded by its owner: a turn another replica already recovered (and billed) is left alone.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field, replace
from datetime import timedelta
from decimal import Decimal

from sqlalchemy import ColumnElement, bindparam, func, or_, select, update
from sqlalchemy.orm import aliased

from bot.ports import MessageRef
from bot.store.convert import to_nano
from bot.store.records import (
    InterruptedTurn,
    StoredMessage,
    TurnProgress,
    TurnResult,
    UsageEntry,
)
from bot.store.repo import Store, conversation_of, message_of, usage_insert
from bot.store.tables import conversations, messages

FINISH_RESTART = "restart"
"""finish_reason of a turn its process stopped running (a crash, a kill, a lost lease)."""

WAITING, APPROVED, DENIED = "waiting", "approved", "denied"
ANSWERS = (APPROVED, DENIED)
"""`messages.approval`: a tool call waits for its asker; the answer given on another replica."""


@dataclass(frozen=True, slots=True)
class Marks:
    """What other replicas marked on this process's running turns."""

    stops: list[int] = field(default_factory=list)
    answers: dict[int, bool] = field(default_factory=dict)
    """Turn id -> approved."""


TurnBill = Callable[[StoredMessage], tuple[int, int, Decimal | None]]
"""(an interrupted turn, as saved) -> (prompt tokens, completion tokens, cost or None)."""


class TurnStore:
    """Leases, progress and recovery of running chat turns, on the Store's database."""

    def __init__(self, store: Store) -> None:
        self._store = store

    async def heartbeat(
        self,
        owner: str,
        lease: timedelta,
        progress: Sequence[TurnProgress] = (),
        *,
        renew: bool = True,
    ) -> int:
        """Save `progress` (each saved turn's lease renewed with it) and, with `renew`, renew
        the other turns `owner` runs whose lease is down to two thirds; one transaction.
        Returns how many turns were saved or renewed (a turn recovered meanwhile is neither).

        A turn's row is written once per beat at most: rewriting every lease as well would
        double the rows a beat writes (on PostgreSQL, a new row version each)."""
        m = messages.c
        save = (
            update(messages)
            .where(m.id == bindparam("turn"), m.owner == owner, m.status == "streaming")
            .values(
                content=bindparam("text"),
                reply_refs=bindparam("refs"),
                provider=func.coalesce(bindparam("used_provider"), m.provider),
                model=func.coalesce(bindparam("used_model"), m.model),
                lease_until=bindparam("until"),
                updated_at=bindparam("now"),
            )
        )
        rows = [
            {
                "turn": p.message_id,
                "text": p.content,
                "refs": refs_json(p.refs),
                "used_provider": p.provider,
                "used_model": p.model,
            }
            for p in progress
        ]
        count = 0
        async with self._store._transaction(write=True, keeping=True) as conn:
            # Leases dated from once the connection is ours: a beat that waited for a busy
            # pool would otherwise renew for less than `lease`, and its turns look abandoned.
            now = self._store._clock.wall()
            until = now + lease
            if rows:
                saved = await conn.execute(save, [r | {"until": until, "now": now} for r in rows])
                count += saved.rowcount if saved.rowcount >= 0 else len(rows)  # -1: not counted
            if renew:
                renewed = await conn.execute(
                    update(messages)
                    .where(
                        m.owner == owner,
                        m.status == "streaming",
                        or_(m.lease_until.is_(None), m.lease_until < until - lease / 3),
                    )
                    .values(lease_until=until)
                )
                count += int(renewed.rowcount or 0)
        return count

    async def finish(
        self, message_id: int, owner: str, result: TurnResult, usage: UsageEntry | None
    ) -> bool:
        """End a turn this owner still holds and bill it, in one transaction; False when the
        turn was no longer `streaming` under `owner` (another replica recovered it)."""
        m = messages.c
        now = self._store._clock.wall()
        stmt = (
            update(messages)
            .where(m.id == message_id, m.owner == owner, m.status == "streaming")
            .values(
                content=result.content,
                status=result.status,
                finish_reason=result.finish_reason,
                model=m.model if result.model is None else result.model,
                provider=m.provider if result.provider is None else result.provider,
                prompt_tokens=result.prompt_tokens,
                completion_tokens=result.completion_tokens,
                cost=None if result.cost is None else to_nano(result.cost),
                ttft_ms=result.ttft_ms,
                duration_ms=result.duration_ms,
                tool_rounds=result.tool_rounds,
                lease_until=None,
                updated_at=now,
            )
        )
        async with self._store._transaction(write=True) as conn:
            done = await conn.execute(stmt)
            if not done.rowcount:
                return False
            if usage is not None:
                await conn.execute(usage_insert(usage, now))
        return True

    async def request_stop(self, message_id: int) -> bool:
        """Mark a turn that a live process runs (its lease holds) for Stop, for that process to
        see (`marks_among`); False when none runs it: it ended, or recovery will end it."""
        stmt = (
            update(messages)
            .where(messages.c.id == message_id, *self._live())
            .values(stop_requested_at=self._store._clock.wall())
        )
        async with self._store._transaction(write=True) as conn:
            marked = await conn.execute(stmt)
        return bool(marked.rowcount)

    async def marks_among(self, ids: Collection[int]) -> Marks:
        """What was pressed elsewhere on `ids` (turns this process runs): Stop, and answers to
        the tool calls they wait on."""
        if not ids:
            return Marks()
        m = messages.c
        stmt = select(m.id, m.stop_requested_at, m.approval).where(
            m.id.in_(sorted(ids)),
            m.status == "streaming",
            or_(m.stop_requested_at.is_not(None), m.approval.in_(ANSWERS)),
        )
        async with self._store._transaction(write=False, keeping=True) as conn:
            rows = (await conn.execute(stmt)).all()
        stops = [int(r.id) for r in rows if r.stop_requested_at is not None]
        answers = {int(r.id): r.approval == APPROVED for r in rows if r.approval in ANSWERS}
        return Marks(stops, answers)

    async def set_waiting(self, message_id: int, waiting: bool) -> None:
        """A tool call of this turn waits for its asker (or no longer does): another replica
        may take the answer (`answer`)."""
        m = messages.c
        stmt = update(messages).where(m.id == message_id)
        async with self._store._transaction(write=True) as conn:
            await conn.execute(stmt.values(approval=WAITING if waiting else None))

    async def waiting(self, message_id: int) -> bool:
        """Does a live process's turn wait for an answer to a tool call?"""
        m = messages.c
        stmt = select(m.id).where(m.id == message_id, m.approval == WAITING, *self._live())
        async with self._store._transaction(write=False) as conn:
            return (await conn.execute(stmt)).first() is not None

    async def answer(self, message_id: int, approve: bool) -> bool:
        """The asker's answer to the call a turn that a live process runs waits on; the first
        answer only (False: nothing waits)."""
        m = messages.c
        stmt = (
            update(messages)
            .where(m.id == message_id, m.approval == WAITING, *self._live())
            .values(approval=APPROVED if approve else DENIED)
        )
        async with self._store._transaction(write=True) as conn:
            return bool((await conn.execute(stmt)).rowcount)

    async def take_answer(self, message_id: int) -> bool:
        """The owner takes an answer given elsewhere, once (the column is cleared with it)."""
        m = messages.c
        stmt = (
            update(messages)
            .where(m.id == message_id, m.approval.in_(ANSWERS))
            .values(approval=None)
        )
        async with self._store._transaction(write=True, keeping=True) as conn:
            return bool((await conn.execute(stmt)).rowcount)

    def _live(self) -> tuple[ColumnElement[bool], ...]:
        """A turn that a process runs now: streaming, under a lease that has not run out."""
        m = messages.c
        now = self._store._clock.wall()
        return (m.status == "streaming", m.owner.is_not(None), m.lease_until > now)

    async def owners(self) -> list[str]:
        """Who runs the `streaming` turns now (so a caller can tell which of them are gone)."""
        m = messages.c
        stmt = select(m.owner).where(m.status == "streaming", m.owner.is_not(None)).distinct()
        async with self._store._transaction(write=False, keeping=True) as conn:
            return [str(owner) for owner in (await conn.execute(stmt)).scalars()]

    async def recover(self, bill: TurnBill, gone: Collection[str] = ()) -> list[InterruptedTurn]:
        """Take every `streaming` turn whose lease ran out, that never had one, or whose owner
        is known to be `gone`, as interrupted; bill what it generated by `bill`; return them
        oldest first."""
        m = messages.c
        now = self._store._clock.wall()
        abandoned = or_(m.lease_until.is_(None), m.lease_until <= now)
        if gone:
            abandoned = or_(abandoned, m.owner.in_(sorted(gone)))
        take = (
            update(messages)
            .where(m.status == "streaming", abandoned)
            .values(
                status="interrupted",
                finish_reason=FINISH_RESTART,
                lease_until=None,
                updated_at=now,
            )
            .returning(*messages.c)
        )
        async with self._store._transaction(write=True, keeping=True) as conn:
            rows = (await conn.execute(take)).all()
            if not rows:
                return []
            taken = sorted((message_of(row) for row in rows), key=lambda turn: turn.id)
            refs = {row.id: refs_from_json(row.reply_refs) for row in rows}
            asker = aliased(messages)
            places = (
                await conn.execute(
                    select(
                        messages.c.id.label("turn_id"),
                        asker.c.user_id.label("asker_id"),
                        conversations,
                    )
                    .join(conversations, conversations.c.id == messages.c.conversation_id)
                    .outerjoin(asker, asker.c.id == messages.c.parent_id)
                    .where(messages.c.id.in_([turn.id for turn in taken]))
                )
            ).all()
            where = {row.turn_id: (row.asker_id, conversation_of(row)) for row in places}
            found: list[InterruptedTurn] = []
            for turn in taken:
                user_id, conversation = where[turn.id]
                prompt_tokens, completion_tokens, cost = bill(turn)
                await conn.execute(
                    update(messages)
                    .where(m.id == turn.id)
                    .values(
                        prompt_tokens=prompt_tokens,
                        completion_tokens=completion_tokens,
                        cost=None if cost is None else to_nano(cost),
                    )
                )
                if turn.model and turn.provider and user_id:
                    entry = UsageEntry(
                        conversation.tenant_id, user_id, "chat", turn.provider, turn.model,
                        prompt_tokens, completion_tokens, cost, conversation.id, turn.id,
                    )  # fmt: skip
                    await conn.execute(usage_insert(entry, now))
                found.append(
                    InterruptedTurn(
                        _billed(turn, prompt_tokens, completion_tokens, cost),
                        conversation,
                        user_id or "",
                        refs[turn.id],
                    )
                )
        return found


def refs_json(refs: Sequence[MessageRef]) -> str:
    return json.dumps([[ref.id, ref.channel] for ref in refs])


def refs_from_json(raw: str | None) -> tuple[MessageRef, ...]:
    if not raw:
        return ()
    return tuple(MessageRef(str(ref_id), str(channel)) for ref_id, channel in json.loads(raw))


def _billed(
    turn: StoredMessage, prompt_tokens: int, completion_tokens: int, cost: Decimal | None
) -> StoredMessage:
    return replace(
        turn, prompt_tokens=prompt_tokens, completion_tokens=completion_tokens, cost=cost
    )
