"""The store's connection to its database, under every repository (repo.py and the *_repo.py)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from types import TracebackType
from typing import Any, Self

from sqlalchemy import Table, delete, insert, select, text
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import URL
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from sqlalchemy.sql.dml import Insert

from bot.clock import SYSTEM_CLOCK, Clock
from bot.store import migrate as migrations
from bot.store.engine import (
    KEEPING_POOL_SIZE,
    POOL_SIZE,
    WRITE_OPTION,
    create_engine,
    is_sqlite_memory,
)
from bot.store.failures import (
    FailureLog,
    StoreBusy,
    StoreUnavailable,
    is_storage_failure,
)
from bot.store.tables import (
    processed_events,
)

log = logging.getLogger("bot.store.repo")

CHECKPOINT_INTERVAL = 1.0
"""Seconds between background WAL checkpoints of a SQLite file (see engine.SQLITE_FILE_PRAGMAS)."""
_MIGRATION_LOCK = 0x5041524C4559  # "PARLEY": one migrator at a time across PostgreSQL replicas


class StoreBase:
    """The connection: transactions (one SQLite writer at a time; a failing disk said once),
    the schema, WAL checkpoints and the readiness ping. `Store` adds the queries."""

    def __init__(
        self,
        engine: AsyncEngine,
        *,
        clock: Clock = SYSTEM_CLOCK,
        keeping: AsyncEngine | None = None,
    ) -> None:
        self._engine = engine
        self._keeping = keeping or engine
        """Where housekeeping runs (`_transaction(keeping=True)`): on PostgreSQL a small pool of
        its own, so that leases and rate shares are renewed, and Stop marks read, however busy
        the turns keep the main pool; a lease that waited out the pool's 30 s would lapse, and
        another replica would take a live reply over."""
        self._clock = clock
        self._dialect = engine.dialect.name
        no_lock: AbstractAsyncContextManager[Any] = contextlib.nullcontext()
        self._write_lock: AbstractAsyncContextManager[Any] = no_lock
        self._read_lock: AbstractAsyncContextManager[Any] = no_lock
        self._checkpoints: asyncio.Task[None] | None = None
        self.writes = FailureLog("store writes", clock)
        """Whether writes fail now (the last one failed, none worked since): /readyz says so."""
        self._checkpoint_log = FailureLog("WAL checkpoint", clock)
        self.pool = FailureLog("database connections (pool exhausted)", clock)
        """Whether transactions wait out the pool's timeout now (StoreBusy): logged, not failing."""
        if self._dialect == "sqlite":
            # SQLite has one writer: queue writers here rather than in busy_timeout.
            self._write_lock = asyncio.Lock()
            if is_sqlite_memory(engine.url):
                # Every transaction shares the one connection, so none may overlap.
                self._read_lock = self._write_lock

    @classmethod
    async def open(
        cls,
        url: str | URL,
        *,
        migrate: bool = True,
        clock: Clock = SYSTEM_CLOCK,
        checkpoint_every: float | None = CHECKPOINT_INTERVAL,
        pool_size: int = POOL_SIZE,
    ) -> Self:
        """Connect (creating a SQLite file's directory) and, unless told not to, migrate to head.

        A SQLite file is checkpointed every `checkpoint_every` seconds in the background (None:
        only when `checkpoint` is called)."""
        engine = create_engine(url, pool_size=pool_size)
        keeping = None
        if engine.dialect.name == "postgresql":
            keeping = create_engine(url, pool_size=KEEPING_POOL_SIZE)
        store = cls(engine, clock=clock, keeping=keeping)
        if migrate:
            try:
                await store.upgrade()
            except BaseException:
                await store.close()
                raise
        file = store._dialect == "sqlite" and not is_sqlite_memory(store._engine.url)
        if file and checkpoint_every is not None:
            store._checkpoints = asyncio.create_task(store._checkpoint_every(checkpoint_every))
        return store

    async def close(self) -> None:
        if self._checkpoints is not None:
            self._checkpoints.cancel()
            await asyncio.gather(self._checkpoints, return_exceptions=True)
            self._checkpoints = None
        await self._engine.dispose()
        if self._keeping is not self._engine:
            await self._keeping.dispose()

    async def checkpoint(self) -> tuple[int, int, int]:
        """SQLite file: copy what the WAL holds into the database, waiting for no one (PASSIVE),
        off the writers' path; returns SQLite's (busy, WAL frames, frames checkpointed)."""
        async with self._engine.connect() as conn:
            conn = await conn.execution_options(isolation_level="AUTOCOMMIT")
            result = await conn.exec_driver_sql("PRAGMA wal_checkpoint(PASSIVE)")
            row: tuple[Any, ...] = tuple(result.one())
        return int(row[0]), int(row[1]), int(row[2])

    async def _checkpoint_every(self, seconds: float) -> None:
        while True:
            await asyncio.sleep(seconds)
            try:
                await self.checkpoint()
            except (SQLAlchemyError, OSError) as exc:  # retried at the next tick
                self._checkpoint_log.failed(exc)
            else:
                self._checkpoint_log.worked()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    @property
    def dialect(self) -> str:
        return self._dialect

    @asynccontextmanager
    async def _transaction(
        self, *, write: bool, keeping: bool = False
    ) -> AsyncIterator[AsyncConnection]:
        """One transaction (`keeping`: housekeeping's, on its own pool where there is one). A
        write that fails in the database or its disk raises StoreUnavailable (and marks the
        store not ready until a write works again)."""
        engine = self._keeping if keeping else self._engine
        if not write:
            try:
                async with self._read_lock, engine.connect() as conn, conn.begin():
                    yield conn
            except PoolTimeout as exc:
                raise self._busy(exc) from exc
            return
        try:
            async with self._write_lock, engine.connect() as conn:
                await conn.execution_options(**{WRITE_OPTION: True})
                async with conn.begin():
                    yield conn
        except PoolTimeout as exc:
            raise self._busy(exc) from exc
        except (SQLAlchemyError, OSError) as exc:
            if not is_storage_failure(exc):
                raise
            self.writes.failed(exc)
            raise StoreUnavailable() from exc
        self.writes.worked()
        self.pool.worked()

    def _busy(self, exc: PoolTimeout) -> StoreBusy:
        self.pool.failed(exc)
        return StoreBusy()

    # -- schema -------------------------------------------------------------------------------

    async def upgrade(self) -> None:
        """Alembic `upgrade head`, in one transaction; a no-op when already at head."""
        async with self._transaction(write=True) as conn:
            if self._dialect == "postgresql":
                await conn.execute(
                    text("SELECT pg_advisory_xact_lock(:key)"), {"key": _MIGRATION_LOCK}
                )
            await conn.run_sync(migrations.upgrade)

    async def current_revision(self) -> str | None:
        async with self._transaction(write=False) as conn:
            return await conn.run_sync(migrations.current_revision)

    async def ping(self) -> bool:
        """Readiness: can a trivial query round-trip to the database? And, while writes have
        been failing, does a write work again (a probe row, inserted and deleted)?"""
        try:
            if self.writes.failing:
                await self._probe_write()
            else:
                async with self._transaction(write=False) as conn:
                    await conn.execute(select(1))
        except StoreUnavailable:
            return False
        except (SQLAlchemyError, OSError, TimeoutError) as exc:
            log.warning("store ping failed: %s", type(exc).__name__)
            return False
        return True

    async def _probe_write(self) -> None:
        """A write that reaches the disk and leaves nothing behind."""
        probe = {"platform": "probe", "event_id": secrets.token_hex(8)}
        async with self._transaction(write=True) as conn:
            await conn.execute(
                insert(processed_events).values(**probe, created_at=self._clock.wall())
            )
            await conn.execute(
                delete(processed_events).where(
                    processed_events.c.platform == probe["platform"],
                    processed_events.c.event_id == probe["event_id"],
                )
            )

    def _insert_ignoring_conflicts(self, table: Table, **values: Any) -> Insert:
        if self._dialect == "postgresql":
            return pg_insert(table).values(**values).on_conflict_do_nothing()
        return sqlite_insert(table).values(**values).on_conflict_do_nothing()
