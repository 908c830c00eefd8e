"""Usage reports and per-user chat limits: SQL over the ledger and messages, and the admissions of
turns under a messages-per-minute limit.

Part of the Store package; a `UsageStore` wraps a `Store` and runs in its transactions.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import delete, func, select, text

from bot.store.convert import from_nano
from bot.store.records import UsageLine, UserSpend
from bot.store.repo import Store
from bot.store.tables import chat_admissions, conversations, messages, usage_ledger


class UsageStore:
    def __init__(self, store: Store) -> None:
        self._store = store

    async def breakdown(
        self, *, tenant_id: str, user_id: str | None, since: datetime
    ) -> list[UsageLine]:
        """Ledger sums per (kind, provider, model) since `since`, costliest first."""
        u = usage_ledger.c
        cost = func.coalesce(func.sum(u.cost), 0)
        stmt = (
            select(
                u.kind,
                u.provider,
                u.model,
                func.coalesce(func.sum(u.prompt_tokens), 0),
                func.coalesce(func.sum(u.completion_tokens), 0),
                cost,
                func.count(),
            )
            .where(u.tenant_id == tenant_id, u.created_at >= since)
            .group_by(u.kind, u.provider, u.model)
            .order_by(cost.desc(), u.kind, u.provider, u.model)
        )
        if user_id is not None:
            stmt = stmt.where(u.user_id == user_id)
        async with self._store._transaction(write=False) as conn:
            rows = (await conn.execute(stmt)).all()
        # PostgreSQL's SUM(bigint) is numeric: normalise every sum to int before converting.
        return [
            UsageLine(kind, provider, model, int(p), int(c), from_nano(int(nano)), int(n))
            for kind, provider, model, p, c, nano, n in rows
        ]

    async def top_users(
        self, *, tenant_id: str, since: datetime, limit: int = 5
    ) -> list[UserSpend]:
        u = usage_ledger.c
        tokens = func.coalesce(func.sum(u.prompt_tokens + u.completion_tokens), 0)
        cost = func.coalesce(func.sum(u.cost), 0)
        stmt = (
            select(u.user_id, tokens, cost, func.count())
            .where(u.tenant_id == tenant_id, u.created_at >= since)
            .group_by(u.user_id)
            .order_by(cost.desc(), tokens.desc(), u.user_id)
            .limit(limit)
        )
        async with self._store._transaction(write=False) as conn:
            rows = (await conn.execute(stmt)).all()
        return [UserSpend(user, int(t), from_nano(int(c)), int(n)) for user, t, c, n in rows]

    async def chat_tokens(self, *, tenant_id: str, user_id: str, since: datetime) -> int:
        """Chat tokens (prompt + completion) a user spent in a tenant since `since`."""
        u = usage_ledger.c
        stmt = select(func.coalesce(func.sum(u.prompt_tokens + u.completion_tokens), 0)).where(
            u.tenant_id == tenant_id,
            u.user_id == user_id,
            u.kind == "chat",
            u.created_at >= since,
        )
        async with self._store._transaction(write=False) as conn:
            return int((await conn.execute(stmt)).scalar_one())

    async def admit_turn(self, *, tenant_id: str, user_id: str, per_minute: int) -> bool:
        """Admit one more chat turn for the user when fewer than `per_minute` were admitted in
        the last minute: the count and the admission in one transaction, serialized per user
        (SQLite's one writer; on PostgreSQL a transaction lock on the user), so turns arriving
        at once, on any replica, are admitted up to the limit and no further."""
        a = chat_admissions.c
        now = self._store._clock.wall()
        mine = (a.tenant_id == tenant_id, a.user_id == user_id)
        async with self._store._transaction(write=True) as conn:
            if self._store.dialect == "postgresql":
                await conn.execute(
                    text("SELECT pg_advisory_xact_lock(hashtextextended(:user, 0))"),
                    {"user": f"chat-limit:{tenant_id}:{user_id}"},
                )
            await conn.execute(
                delete(chat_admissions).where(*mine, a.admitted_at < now - timedelta(minutes=1))
            )
            recent = select(func.count()).where(*mine, a.admitted_at >= now - timedelta(minutes=1))
            if int((await conn.execute(recent)).scalar_one()) >= per_minute:
                return False
            await conn.execute(
                chat_admissions.insert().values(
                    tenant_id=tenant_id, user_id=user_id, admitted_at=now
                )
            )
        return True

    async def turns_asked(self, *, tenant_id: str, user_id: str, since: datetime) -> int:
        """Answers a user asked for in a tenant since `since`, new messages and regenerations
        alike, a moderation refusal included (for messages-per-minute limits)."""
        m, c = messages.c, conversations.c
        stmt = (
            select(func.count())
            .select_from(messages.join(conversations, m.conversation_id == c.id))
            .where(
                m.user_id == user_id,
                m.role == "assistant",
                m.created_at >= since,
                c.tenant_id == tenant_id,
            )
        )
        async with self._store._transaction(write=False) as conn:
            return int((await conn.execute(stmt)).scalar_one())
