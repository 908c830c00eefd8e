"""The Store on PostgreSQL: a throwaway server on 127.0.0.1 runs the same contract as SQLite.

The server (tests/pg.py) is started once per session (initdb into a temporary directory, pg_ctl on
a free port, fsync off). The contract tests share one database, emptied before each test (CREATE
DATABASE costs ~0.3 s, TRUNCATE a few ms); the migration tests each get a fresh, empty database.
Skipped, with the reason, when PostgreSQL's binaries or asyncpg are missing or initdb cannot run.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Iterator

import pytest
from alembic import command
from sqlalchemy import text

from bot.domain import ConversationKey
from bot.store import Store, TurnProgress, TurnStore
from bot.store.engine import create_engine
from bot.store.migrate import alembic_config, head_revision
from bot.store.shares_repo import RateShares
from bot.store.tables import metadata
from tests.pg import SUPERUSER, PgServer, server_for_tests
from tests.unit.store.conftest import FakeClock
from tests.unit.store.contract import (
    TABLES,
    StoreContract,
    counting_follows_its_migration,
    schema_diff,
    table_names,
)
from tests.unit.store.contract_turns import LEASE

asyncpg = pytest.importorskip("asyncpg", reason="asyncpg (the postgres extra) is not installed")

SHARED_DATABASE = "contract"
APP_TABLES = ", ".join(t.name for t in metadata.sorted_tables)  # every table the app owns


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PgServer]:
    with server_for_tests(SHARED_DATABASE) as server:
        yield server


@pytest.fixture
async def pg_url(pg_server: PgServer) -> str:
    """A fresh, empty database on the session's server."""
    name = f"t_{uuid.uuid4().hex[:16]}"
    conn = await asyncpg.connect(
        host="127.0.0.1", port=pg_server.port, user=SUPERUSER, database="postgres"
    )
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    return pg_server.url(name)


@pytest.fixture
async def shared_pg_url(pg_server: PgServer) -> str:
    """The session's shared database, emptied (ids restarted) but still migrated."""
    conn = await asyncpg.connect(
        host="127.0.0.1", port=pg_server.port, user=SUPERUSER, database=SHARED_DATABASE
    )
    try:
        if await conn.fetchval("SELECT to_regclass('public.tenants')") is not None:
            await conn.execute(f"TRUNCATE {APP_TABLES} RESTART IDENTITY CASCADE")
    finally:
        await conn.close()
    return pg_server.url(SHARED_DATABASE)


class TestPostgresStore(StoreContract):
    @pytest.fixture
    async def store(self, shared_pg_url: str, clock: FakeClock) -> AsyncIterator[Store]:
        store = await Store.open(shared_pg_url, clock=clock)
        yield store
        await store.close()

    @pytest.fixture
    async def second_store(self, shared_pg_url: str, clock: FakeClock) -> AsyncIterator[Store]:
        store = await Store.open(shared_pg_url, clock=clock)
        yield store
        await store.close()


async def test_migrations_create_every_table_on_an_empty_database(pg_url: str) -> None:
    async with await Store.open(pg_url, migrate=False) as store:
        assert store.dialect == "postgresql"
        assert await store.current_revision() is None
        await store.upgrade()
        assert await store.current_revision() == head_revision()
    assert await table_names(pg_url) == TABLES


async def test_the_search_index_comes_and_goes_with_its_migration(pg_url: str) -> None:
    await (await Store.open(pg_url)).close()
    assert "messages_fts" in await table_names(pg_url, search=True)
    engine = create_engine(pg_url)
    async with engine.begin() as conn:
        await conn.run_sync(lambda sync: command.downgrade(alembic_config(sync), "0008"))
        functions = await conn.execute(
            text("SELECT count(*) FROM pg_proc WHERE proname LIKE 'fn_messages_fts%'")
        )
        assert functions.scalar_one() == 0
    await engine.dispose()
    assert await table_names(pg_url, search=True) == TABLES - {
        "rate_shares",
        "chat_admissions",
        "workspace_orgs",
    }  # 0012, 0013, 0015
    await (await Store.open(pg_url)).close()  # and back up again
    assert "messages_fts" in await table_names(pg_url, search=True)


async def test_migrated_schema_matches_the_table_definitions(pg_url: str) -> None:
    await (await Store.open(pg_url)).close()
    assert await schema_diff(pg_url) == []


async def test_replicas_starting_together_migrate_once(pg_url: str) -> None:
    stores = await asyncio.gather(*(Store.open(pg_url) for _ in range(3)))
    for store in stores:
        assert await store.current_revision() == head_revision()
        await store.close()


async def test_bare_postgres_url_gets_the_async_driver(pg_server: PgServer, pg_url: str) -> None:
    bare = pg_url.replace("postgresql+asyncpg://", "postgres://")
    async with await Store.open(bare) as store:
        assert await store.ping()


async def test_the_message_counting_trigger_follows_its_migration(pg_url: str) -> None:
    await counting_follows_its_migration(pg_url)


async def test_housekeeping_keeps_its_own_connections_when_the_turns_hold_every_other(
    shared_pg_url: str, clock: FakeClock
) -> None:
    """Every connection of the main pool held (turns waiting on a busy loop): a heartbeat, a
    rate share's renewal and a look for Stop marks still run, on housekeeping's pool, so no
    live reply's lease lapses for another replica to take it over."""
    store = await Store.open(shared_pg_url, clock=clock, pool_size=1)  # 1, and 1 more in a burst
    turns, shares = TurnStore(store), RateShares(store)
    key = ConversationKey("discord", "g1", "c1", "t1")
    conversation = await store.ensure_conversation(key, "u1", "hello")
    turn = await store.add_message(
        conversation.id, "assistant", "", status="streaming", owner="p1", lease=LEASE
    )
    release, holding = asyncio.Event(), asyncio.Barrier(3)

    async def hold() -> None:
        async with store._transaction(write=False) as conn:
            await conn.execute(text("SELECT 1"))
            await holding.wait()
            await release.wait()

    holders = [asyncio.create_task(hold()) for _ in range(2)]
    try:
        await asyncio.wait_for(holding.wait(), 10)  # both of the main pool's connections
        clock.advance(15)
        progress = TurnProgress(turn.id, "some text", ())
        assert await asyncio.wait_for(turns.heartbeat("p1", LEASE, [progress]), 10) == 1
        assert await asyncio.wait_for(shares.renew("discord:global", "p1", LEASE), 10) == 1
        assert not (await asyncio.wait_for(turns.marks_among([turn.id]), 10)).stops
    finally:
        release.set()
        await asyncio.gather(*holders)
        await store.close()
