"""How the Store connects: the async driver for a URL, and SQLite's per-connection settings."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import Connection, event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.pool import StaticPool

WRITE_OPTION = "parley_write"
"""Execution option marking a transaction that will write; on SQLite it begins IMMEDIATE."""

# busy_timeout first: switching to WAL takes a lock, and without a busy handler a second process
# opening the same new file at that moment fails at once with "database is locked".
SQLITE_PRAGMAS = ("busy_timeout=5000", "journal_mode=WAL", "foreign_keys=ON", "synchronous=NORMAL")


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


def _sqlite_on_connect(dbapi_connection: Any, _record: Any) -> None:
    # Let SQLAlchemy's "begin" event (below) issue BEGIN, so DDL is transactional too.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    for pragma in SQLITE_PRAGMAS:
        cursor.execute(f"PRAGMA {pragma}")
    cursor.close()


def _sqlite_on_begin(connection: Connection) -> None:
    # A writer takes the write lock up front: a deferred transaction that reads and then writes can
    # fail with SQLITE_BUSY at once, whereas BEGIN IMMEDIATE waits out busy_timeout.
    write = connection.get_execution_options().get(WRITE_OPTION, False)
    connection.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")


def create_engine(url: str | URL) -> AsyncEngine:
    """An AsyncEngine set up the way the Store needs it (also used by the alembic CLI's env.py).

    SQLite: WAL, busy_timeout 5 s, foreign keys on, synchronous NORMAL on every connection; the
    database file's directory is created if missing; `:memory:` shares its one connection.
    """
    parsed = normalize_url(url)
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        if is_sqlite_memory(parsed):
            engine = create_async_engine(parsed, poolclass=StaticPool)
        else:
            database = parsed.database or ""
            if not database.startswith("file:"):
                Path(database).parent.mkdir(parents=True, exist_ok=True)
            engine = create_async_engine(parsed)
        event.listen(engine.sync_engine, "connect", _sqlite_on_connect)
        event.listen(engine.sync_engine, "begin", _sqlite_on_begin)
        return engine
    if backend == "postgresql":
        return create_async_engine(parsed, pool_pre_ping=True)
    raise ValueError(f"unsupported database {backend!r}: use sqlite or postgresql")
