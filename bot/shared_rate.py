"""A rate that several processes spend together, split between the ones alive now.

Discord's 50 requests a second are the bot's, and Slack's `chat.update` and `chat.appendStream`
tiers are the app's in each workspace: two processes on one token (or app) that each paced at the
whole rate would draw 429s. Each process holds a share in the store (RateShares: a row under the
budget's name, renewed every `every` seconds with a lease) and paces its TeamBudgets at one share
of each (`TeamBudget.share`: rate and burst over the live shares). A process that stops leaves
at once; one that dies drops out when its lease (five renewals) runs out, and the others take
its share back then. The lease is long on purpose: counting a process too many only paces the
others a little under the rate, but a live process counted out (its renewal late under load)
leaves the others pacing at its share too, over the limit. A process that joins counts itself
at once; the others see it at their next renewal, so for up to `every` seconds the total may
be over by a share (Discord's limit is 50 against the 45 paced by default; on Slack a replica
that joins under load may draw a 429, which the streamer waits out).

Why not a token bucket in the database: every REST request would wait for a database round
trip, and a per-request write is the load this avoids; shares move only when processes come
and go.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import secrets
import socket
from collections.abc import Sequence
from datetime import timedelta

from sqlalchemy.exc import SQLAlchemyError

from bot.pacing import TeamBudget
from bot.store import Store, StoreError
from bot.store.shares_repo import RateShares

log = logging.getLogger("parley.pacing")

SHARE_EVERY = 2.0
"""Seconds between renewals of a process's share (each one re-reads how many share the rate)."""
LEASE_RENEWALS = 5
"""A share lapses after this many renewals' time without one."""


def budget_name(platform: str, credential: str) -> str:
    """One budget per bot: the platform and a digest of its token (never the token)."""
    return f"{platform}:{hashlib.sha256(credential.encode()).hexdigest()[:16]}"


class SharedRate:
    def __init__(
        self, store: Store, name: str, budgets: Sequence[TeamBudget], *, every: float = SHARE_EVERY
    ) -> None:
        self.name = name
        self.budgets = tuple(budgets)
        self.every = every
        self.member = f"{socket.gethostname()[:32]}.{os.getpid()}.{secrets.token_hex(4)}"
        self.members = 1
        self._shares = RateShares(store)
        self._failing = False

    async def refresh(self) -> int:
        """Renew this process's share and pace at the total over the live shares; a store that
        cannot answer keeps the last share (retried at the next renewal)."""
        lease = timedelta(seconds=self.every * LEASE_RENEWALS)
        try:
            members = await self._shares.renew(self.name, self.member, lease)
        except (SQLAlchemyError, OSError, StoreError) as exc:
            if not self._failing:
                log.warning("rate share not renewed (keeping 1/%d): %s", self.members,
                            type(exc).__name__)  # fmt: skip
            self._failing = True
            return self.members
        self._failing = False
        if members != self.members:
            # Fewer: one left, or its renewals stopped for a whole lease (died, or stalled).
            level = logging.WARNING if members < self.members else logging.INFO
            log.log(level, "%s shared by %d processes: each paces at 1/%d", self.name, members,
                    members)  # fmt: skip
        self.members = max(members, 1)
        for budget in self.budgets:
            budget.share(self.members)
        return self.members

    async def run(self) -> None:
        """Renew until cancelled, then leave (so the others take the share back at once)."""
        try:
            while True:
                await asyncio.sleep(self.every)
                await self.refresh()
        finally:
            try:
                await asyncio.shield(self._shares.leave(self.name, self.member))
            except (SQLAlchemyError, OSError, StoreError) as exc:
                log.warning("rate share not left: %s", type(exc).__name__)
