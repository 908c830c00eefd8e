"""Circuit-breaker rows shared by replicas: read, and change one atomically under a row lock."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from sqlalchemy import Row, select, update

from bot.store.records import BreakerRecord
from bot.store.repo import Store
from bot.store.tables import breakers

BreakerChange = Callable[[BreakerRecord], BreakerRecord]
"""A pure function from the current row to the new one, run inside the locking transaction."""


class BreakerStore:
    """The `breakers` table. `change()` is the only writer: read-modify-write in one transaction."""

    def __init__(self, store: Store) -> None:
        self._store = store

    async def get(self, name: str) -> BreakerRecord | None:
        stmt = select(breakers).where(breakers.c.name == name)
        async with self._store._transaction(write=False) as conn:
            row = (await conn.execute(stmt)).first()
        return None if row is None else _record(row)

    async def all(self, prefix: str = "") -> list[BreakerRecord]:
        stmt = select(breakers).order_by(breakers.c.name)
        if prefix:
            stmt = stmt.where(breakers.c.name.startswith(prefix, autoescape=True))
        async with self._store._transaction(write=False) as conn:
            rows = (await conn.execute(stmt)).all()
        return [_record(row) for row in rows]

    async def change(self, name: str, change: BreakerChange) -> tuple[BreakerRecord, BreakerRecord]:
        """Apply `change` to the row (created CLOSED if missing); returns (before, after).

        The row is locked (SELECT ... FOR UPDATE on PostgreSQL; SQLite's write transaction is
        exclusive), so two replicas deciding at once see each other's result: one probe, not two.
        """
        now = self._store._clock.wall()
        async with self._store._transaction(write=True) as conn:
            await conn.execute(
                self._store._insert_ignoring_conflicts(
                    breakers, name=name, state="CLOSED", failures="[]", updated_at=now
                )
            )
            stmt = select(breakers).where(breakers.c.name == name).with_for_update()
            before = _record((await conn.execute(stmt)).one())
            after = change(before)
            if after != before:
                await conn.execute(
                    update(breakers)
                    .where(breakers.c.name == name)
                    .values(
                        state=after.state,
                        failures=json.dumps(list(after.failures)),
                        open_until=after.open_until,
                        probe_until=after.probe_until,
                        probe_successes=after.probe_successes,
                        last_error=after.last_error,
                        updated_at=now,
                    )
                )
        return before, after


def _record(row: Row[Any]) -> BreakerRecord:
    return BreakerRecord(
        name=row.name,
        state=row.state,
        failures=tuple(float(f) for f in json.loads(row.failures or "[]")),
        open_until=row.open_until,
        probe_until=row.probe_until,
        probe_successes=row.probe_successes,
        last_error=row.last_error,
        updated_at=row.updated_at,
    )
