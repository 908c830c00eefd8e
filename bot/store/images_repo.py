"""Image quotes and jobs: the SQL behind the two-phase flow (quote, then claim exactly once).

Part of the Store package ("the one place that runs SQL"): an `ImageStore` wraps a `Store` and runs
in its transactions. The claim is one write transaction that re-reads the quote, counts the
requester's usage, and flips `quoted -> generating`; on SQLite writers are serialised (BEGIN
IMMEDIATE), on PostgreSQL a transaction-scoped advisory lock per tenant serialises claims that
share limits, and the `status = 'quoted'` guard on the UPDATE makes a second claim of one quote
match no row on either backend. Claims and cancels are bound to the acting (platform, tenant, user):
a quote of another platform or tenant reads as unknown, in every read and write of the transaction.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import ColumnElement, Row, and_, case, func, insert, or_, select, text, update
from sqlalchemy.ext.asyncio import AsyncConnection

from bot.domain import Actor
from bot.store.convert import from_nano, to_nano
from bot.store.records import (
    ClaimResult,
    ImageAlternative,
    ImageJob,
    ImageJobStatus,
    ImageUsage,
)
from bot.store.repo import Store
from bot.store.tables import image_jobs

COUNTED: tuple[ImageJobStatus, ...] = ("generating", "succeeded", "unknown")
"""Statuses that count against limits: money was or may have been spent."""

HISTORY: tuple[ImageJobStatus, ...] = ("succeeded", "unknown", "failed", "refused", "generating")

LimitCheck = Callable[[ImageUsage, Decimal], str | None]
"""(usage so far, price being confirmed) -> a refusal to show, or None to allow the claim."""


class ImageStore:
    """Quotes, claims and job records for image generation, on the Store's database."""

    def __init__(self, store: Store) -> None:
        self._store = store

    def _now(self) -> datetime:
        return self._store._clock.wall()

    async def add_quote(self, job: ImageJob) -> ImageJob:
        values = _values(job)
        async with self._store._transaction(write=True) as conn:
            await conn.execute(insert(image_jobs).values(**values))
        return job

    async def get(self, job_id: str, within: Actor | None = None) -> ImageJob | None:
        """The job; None if unknown or, given `within`, of another platform or tenant."""
        where = _in_tenant(job_id, within) if within is not None else image_jobs.c.id == job_id
        async with self._store._transaction(write=False) as conn:
            row = (await conn.execute(select(image_jobs).where(where))).first()
        return None if row is None else _job(row)

    async def claim(
        self,
        job_id: str,
        actor: Actor,
        *,
        entry: str,
        estimate: Decimal,
        lease: timedelta,
        check: LimitCheck,
    ) -> ClaimResult:
        """Turn the actor's own quote into a running job, once, if the limits allow it."""
        j = image_jobs.c
        now = self._now()
        here = _in_tenant(job_id, actor)
        mine = and_(here, j.user_id == actor.user_id)
        async with self._store._transaction(write=True) as conn:
            row = (await conn.execute(select(image_jobs).where(here))).first()
            if row is None:
                return ClaimResult("not_found")
            job = _job(row)
            if job.user_id != actor.user_id:
                return ClaimResult("not_yours", job)
            if await self._lock_tenant(conn, job.tenant_id):
                # Another replica may have claimed it while we waited for the lock.
                row = (await conn.execute(select(image_jobs).where(mine))).one()
                job = _job(row)
            if job.status != "quoted":
                return ClaimResult("taken", job, job.status)
            if job.expires_at <= now:
                await conn.execute(
                    update(image_jobs)
                    .where(mine, j.status == "quoted")
                    .values(status="expired", finished_at=now)
                )
                return ClaimResult("expired", job)
            usage = await _usage(conn, job.tenant_id, actor.user_id, now)
            refusal = check(usage, estimate)
            if refusal is not None:
                return ClaimResult("limit", job, refusal)
            claimed = (
                await conn.execute(
                    update(image_jobs)
                    .where(mine, j.status == "quoted")
                    .values(
                        status="generating",
                        claimed_at=now,
                        lease_until=now + lease,
                        confirmed_entry=entry,
                        confirmed_estimate=to_nano(estimate),
                    )
                    .returning(*image_jobs.c)
                )
            ).first()
            if claimed is None:  # another transaction claimed it between our read and update
                current = (await conn.execute(select(j.status).where(j.id == job_id))).scalar()
                return ClaimResult("taken", job, str(current))
        return ClaimResult("claimed", _job(claimed))

    async def finish(
        self,
        job_id: str,
        status: ImageJobStatus,
        *,
        used_provider: str | None = None,
        used_model: str | None = None,
        fallback_from: str | None = None,
        cost: Decimal | None = None,
        duration_ms: int | None = None,
        detail: str | None = None,
        superseded_by: str | None = None,
    ) -> ImageJob | None:
        """Record how a running job ended; None if it was no longer `generating` (recovered)."""
        j = image_jobs.c
        stmt = (
            update(image_jobs)
            .where(j.id == job_id, j.status == "generating")
            .values(
                status=status,
                used_provider=used_provider,
                used_model=used_model,
                fallback_from=fallback_from,
                cost=None if cost is None else to_nano(cost),
                duration_ms=duration_ms,
                detail=detail,
                superseded_by=superseded_by,
                finished_at=self._now(),
            )
            .returning(*image_jobs.c)
        )
        async with self._store._transaction(write=True) as conn:
            row = (await conn.execute(stmt)).first()
        return None if row is None else _job(row)

    async def cancel(self, job_id: str, actor: Actor) -> ClaimResult:
        """The requester withdraws a quote that nobody has confirmed yet."""
        j = image_jobs.c
        here = _in_tenant(job_id, actor)
        async with self._store._transaction(write=True) as conn:
            row = (await conn.execute(select(image_jobs).where(here))).first()
            if row is None:
                return ClaimResult("not_found")
            job = _job(row)
            if job.user_id != actor.user_id:
                return ClaimResult("not_yours", job)
            done = (
                await conn.execute(
                    update(image_jobs)
                    .where(here, j.user_id == actor.user_id, j.status == "quoted")
                    .values(status="cancelled", finished_at=self._now())
                    .returning(*image_jobs.c)
                )
            ).first()
        if done is None:
            return ClaimResult("taken", job, job.status)
        return ClaimResult("claimed", _job(done))

    async def expire_stale(self) -> list[ImageJob]:
        """Mark `generating` jobs whose lease ran out as `unknown` (never retried); return them."""
        j = image_jobs.c
        now = self._now()
        stmt = (
            update(image_jobs)
            .where(j.status == "generating", j.lease_until <= now)
            .values(
                status="unknown",
                detail="the bot stopped while this image was being generated",
                finished_at=now,
            )
            .returning(*image_jobs.c)
        )
        async with self._store._transaction(write=True) as conn:
            rows = (await conn.execute(stmt)).all()
        return sorted((_job(row) for row in rows), key=lambda job: job.claimed_at or now)

    async def recent(self, tenant_id: str, user_id: str, *, limit: int = 10) -> list[ImageJob]:
        """A user's generations in one tenant, newest first (quotes never confirmed left out)."""
        j = image_jobs.c
        stmt = (
            select(image_jobs)
            .where(j.tenant_id == tenant_id, j.user_id == user_id, j.status.in_(HISTORY))
            .order_by(j.claimed_at.desc(), j.id.desc())
            .limit(limit)
        )
        async with self._store._transaction(write=False) as conn:
            rows = (await conn.execute(stmt)).all()
        return [_job(row) for row in rows]

    async def usage(self, tenant_id: str, user_id: str) -> ImageUsage:
        async with self._store._transaction(write=False) as conn:
            return await _usage(conn, tenant_id, user_id, self._now())

    async def _lock_tenant(self, conn: AsyncConnection, tenant_id: str) -> bool:
        """Serialise claims sharing a tenant's limits; True if a lock was taken (PostgreSQL).

        On SQLite the write transaction is already exclusive (BEGIN IMMEDIATE).
        """
        if self._store.dialect != "postgresql":
            return False
        await conn.execute(
            text("SELECT pg_advisory_xact_lock(hashtextextended(:key, 0))"),
            {"key": f"parley-images:{tenant_id}"},
        )
        return True


def _in_tenant(job_id: str, actor: Actor) -> ColumnElement[bool]:
    """The job `job_id` if it belongs to the actor's platform and tenant (any user of it)."""
    j = image_jobs.c
    return and_(j.id == job_id, j.platform == actor.platform, j.tenant_id == actor.tenant_id)


async def _usage(conn: AsyncConnection, tenant_id: str, user_id: str, now: datetime) -> ImageUsage:
    j = image_jobs.c
    hour, day = now - timedelta(hours=1), now - timedelta(days=1)
    month = now.astimezone(UTC).replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    spent = func.coalesce(j.cost, j.confirmed_estimate, 0)
    mine = and_(j.user_id == user_id, j.claimed_at >= day)
    stmt = select(
        func.coalesce(func.sum(case((and_(mine, j.claimed_at >= hour), 1), else_=0)), 0),
        func.coalesce(func.sum(case((mine, 1), else_=0)), 0),
        func.coalesce(func.sum(case((mine, spent), else_=0)), 0),
        func.coalesce(func.sum(case((j.claimed_at >= month, spent), else_=0)), 0),
    ).where(
        j.tenant_id == tenant_id,
        j.status.in_(COUNTED),
        or_(j.claimed_at >= month, j.claimed_at >= day),
    )
    hours, days, day_cost, month_cost = (await conn.execute(stmt)).one()
    # PostgreSQL's SUM(bigint) is numeric: normalise to int before converting.
    return ImageUsage(
        hour_count=int(hours),
        day_count=int(days),
        day_cost=from_nano(int(day_cost)),
        tenant_month_cost=from_nano(int(month_cost)),
    )


def _values(job: ImageJob) -> dict[str, Any]:
    return {
        "id": job.id,
        "tenant_id": job.tenant_id,
        "platform": job.platform,
        "channel_id": job.channel_id,
        "thread_id": job.thread_id,
        "user_id": job.user_id,
        "prompt": job.prompt,
        "options": json.dumps(job.options, sort_keys=True),
        "tier": job.tier,
        "size": job.size,
        "entry": job.entry,
        "provider": job.provider,
        "model": job.model,
        "estimate": to_nano(job.estimate),
        "alternatives": json.dumps([_alt_json(a) for a in job.alternatives]),
        "status": job.status,
        "created_at": job.created_at,
        "expires_at": job.expires_at,
    }


def _alt_json(alt: ImageAlternative) -> dict[str, object]:
    return {
        "entry": alt.entry,
        "provider": alt.provider,
        "model": alt.model,
        "tier": alt.tier,
        "estimate": str(alt.estimate),
    }


def _alternatives(raw: str) -> tuple[ImageAlternative, ...]:
    items: Sequence[dict[str, Any]] = json.loads(raw or "[]")
    return tuple(
        ImageAlternative(
            entry=str(i["entry"]),
            provider=str(i["provider"]),
            model=str(i["model"]),
            tier=str(i["tier"]),
            estimate=Decimal(str(i["estimate"])),
        )
        for i in items
    )


def _money(value: int | None) -> Decimal | None:
    return None if value is None else from_nano(value)


def _job(row: Row[Any]) -> ImageJob:
    return ImageJob(
        id=row.id,
        tenant_id=row.tenant_id,
        platform=row.platform,
        channel_id=row.channel_id,
        thread_id=row.thread_id,
        user_id=row.user_id,
        prompt=row.prompt,
        options=json.loads(row.options or "{}"),
        tier=row.tier,
        size=row.size,
        entry=row.entry,
        provider=row.provider,
        model=row.model,
        estimate=from_nano(row.estimate),
        alternatives=_alternatives(row.alternatives),
        status=row.status,
        created_at=row.created_at,
        expires_at=row.expires_at,
        claimed_at=row.claimed_at,
        lease_until=row.lease_until,
        confirmed_entry=row.confirmed_entry,
        confirmed_estimate=_money(row.confirmed_estimate),
        used_provider=row.used_provider,
        used_model=row.used_model,
        fallback_from=row.fallback_from,
        cost=_money(row.cost),
        duration_ms=row.duration_ms,
        detail=row.detail,
        superseded_by=row.superseded_by,
        finished_at=row.finished_at,
    )
