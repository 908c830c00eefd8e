"""How the Store connects: the async driver for a URL, and SQLite's per-connection settings."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, event
from sqlalchemy.engine import URL, AdaptedConnection, make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.pool import StaticPool

WRITE_OPTION = "parley_write"
"""Execution option marking a transaction that will write; on SQLite it begins IMMEDIATE."""

SQLITE_PRAGMAS = ("busy_timeout=5000", "foreign_keys=ON", "synchronous=NORMAL")
SQLITE_FILE_PRAGMAS = ("wal_autocheckpoint=0",)
"""A file database is checkpointed by the Store in the background (`Store.checkpoint`), not by
whichever commit happens to cross SQLite's 1,000-page mark: that commit would pay for copying
the WAL into the database and syncing it, which was half the slow appends in the benchmark."""
POOL_SIZE = 10
"""PostgreSQL connections a process keeps (as many again opened in a burst, then closed). Many
streams share them: under load a transaction holds its connection while the process's own
loop gets round to each statement, so a pool that is too small makes turns wait for one
(and be refused as busy after 30 s); DATABASE_POOL_SIZE sets it."""
KEEPING_POOL_SIZE = 2
"""PostgreSQL connections of housekeeping's own pool (as many again in a burst): heartbeats,
rate-share renewals, Stop-mark looks and recovery sweeps, a few tasks a process."""
_WAL_ATTEMPTS = 50
_WAL_PAUSE = 0.02  # seconds between attempts; only ever paid by a race on a brand-new file


def normalize_url(url: str | URL) -> URL:
    """Pick the async driver for bare URLs: sqlite -> aiosqlite, postgres(ql) -> asyncpg."""
    parsed = make_url(url)
    if parsed.drivername == "sqlite":
        return parsed.set(drivername="sqlite+aiosqlite")
    if parsed.drivername in ("postgres", "postgresql"):
        return parsed.set(drivername="postgresql+asyncpg")
    return parsed


def is_sqlite_memory(url: URL) -> bool:
    database = url.database or ""
    return database in ("", ":memory:") or url.query.get("mode") == "memory"


def _sqlite_on_connect(dbapi_connection: Any, _record: Any, *, file: bool = False) -> None:
    # Let SQLAlchemy's "begin" event (below) issue BEGIN, so DDL is transactional too.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    for pragma in SQLITE_PRAGMAS + (SQLITE_FILE_PRAGMAS if file else ()):
        cursor.execute(f"PRAGMA {pragma}")
    _use_wal(cursor)
    cursor.close()


def _sqlite_file_on_connect(dbapi_connection: Any, record: Any) -> None:
    _sqlite_on_connect(dbapi_connection, record, file=True)


def _use_wal(cursor: Any) -> None:
    """Switch the file to WAL (it stays WAL for every later connection).

    Switching needs an exclusive lock and SQLite does not wait on busy_timeout for it, so two
    processes opening the same new file at once could fail with "database is locked": re-check
    and retry briefly instead.
    """
    for _ in range(_WAL_ATTEMPTS):
        cursor.execute("PRAGMA journal_mode")
        if str(cursor.fetchone()[0]).lower() in ("wal", "memory"):
            return
        try:
            cursor.execute("PRAGMA journal_mode=WAL")
            return
        except Exception as exc:  # the driver's OperationalError, wrapped by the async adapter
            if "locked" not in str(exc) and "busy" not in str(exc):
                raise
        time.sleep(_WAL_PAUSE)
    cursor.execute("PRAGMA journal_mode=WAL")  # last try: let the error speak


def _sqlite_on_begin(connection: Connection) -> None:
    # A writer takes the write lock up front: a deferred transaction that reads and then writes can
    # fail with SQLITE_BUSY at once, whereas BEGIN IMMEDIATE waits out busy_timeout.
    options = connection.get_execution_options()
    if options.get("isolation_level") == "AUTOCOMMIT":
        return  # e.g. a checkpoint, which must not run inside a transaction
    statement = "BEGIN IMMEDIATE" if options.get(WRITE_OPTION, False) else "BEGIN"
    # Straight to aiosqlite: one trip to its worker thread, where exec_driver_sql takes three
    # (cursor, execute, close), each ~0.1 ms on a busy VM (docs/benchmarks.md, persistence).
    adapted = connection.connection.dbapi_connection
    assert isinstance(adapted, AdaptedConnection)  # create_engine's SQLite is always aiosqlite
    adapted.run_async(lambda driver: driver.execute(statement))


def create_engine(url: str | URL, *, pool_size: int = POOL_SIZE) -> AsyncEngine:
    """An AsyncEngine set up the way the Store needs it (also used by the alembic CLI's env.py).

    SQLite: WAL, busy_timeout 5 s, foreign keys on, synchronous NORMAL on every connection; the
    database file's directory is created if missing; `:memory:` shares its one connection.
    """
    parsed = normalize_url(url)
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        if is_sqlite_memory(parsed):
            engine = create_async_engine(parsed, poolclass=StaticPool)
            event.listen(engine.sync_engine, "connect", _sqlite_on_connect)
        else:
            database = parsed.database or ""
            if not database.startswith("file:"):
                Path(database).parent.mkdir(parents=True, exist_ok=True)
            engine = create_async_engine(parsed)
            event.listen(engine.sync_engine, "connect", _sqlite_file_on_connect)
        event.listen(engine.sync_engine, "begin", _sqlite_on_begin)
        return engine
    if backend == "postgresql":
        return create_async_engine(
            parsed, pool_pre_ping=True, pool_size=pool_size, max_overflow=pool_size
        )
    raise ValueError(f"unsupported database {backend!r}: use sqlite or postgresql")
