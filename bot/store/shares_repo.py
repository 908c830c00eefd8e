"""Rate budgets shared across processes: who shares a budget now.

Part of the Store package ("the one place that runs SQL"). A process joins a budget with a
lease and renews it (`renew`, which answers how many live processes share it); a process that
stops leaves at once (`leave`), and one that dies drops out when its lease runs out.
"""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import delete, func, select, update

from bot.store.repo import Store
from bot.store.tables import rate_shares

FORGET_AFTER = timedelta(minutes=10)
"""Rows of processes gone this long are deleted (a live one renews within seconds)."""


class RateShares:
    def __init__(self, store: Store) -> None:
        self._store = store

    async def renew(self, budget: str, member: str, lease: timedelta) -> int:
        """Hold `member`'s share of `budget` for `lease` more; how many live members share it,
        `member` included. One transaction."""
        r = rate_shares.c
        held = update(rate_shares).where(r.budget == budget, r.member == member)
        async with self._store._transaction(write=True, keeping=True) as conn:
            # The time once the connection is ours: under load the pool may make a renewal wait,
            # and a lease dated from before the wait would lapse early for the others.
            now = self._store._clock.wall()
            live = select(func.count()).where(r.budget == budget, r.lease_until > now)
            renewed = await conn.execute(held.values(lease_until=now + lease))
            if not renewed.rowcount:
                await conn.execute(
                    rate_shares.insert().values(
                        budget=budget, member=member, lease_until=now + lease
                    )
                )
            await conn.execute(delete(rate_shares).where(r.lease_until < now - FORGET_AFTER))
            return int((await conn.execute(live)).scalar_one())

    async def leave(self, budget: str, member: str) -> None:
        r = rate_shares.c
        async with self._store._transaction(write=True) as conn:
            await conn.execute(delete(rate_shares).where(r.budget == budget, r.member == member))
