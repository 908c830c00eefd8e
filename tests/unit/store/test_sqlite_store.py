"""The Store on SQLite: the shared contract on a file and in memory, and what only SQLite has."""

from __future__ import annotations

import asyncio
import sqlite3
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from alembic import command
from sqlalchemy import text

from bot.domain import ConversationKey
from bot.store import Store, TurnStore
from bot.store.engine import create_engine
from bot.store.migrate import SCHEMA_REVISION, alembic_config, head_revision
from tests.unit.store.conftest import FakeClock
from tests.unit.store.contract import (
    KEY,
    TABLES,
    StoreContract,
    counting_follows_its_migration,
    schema_diff,
    table_names,
)
from tests.unit.store.contract_turns import flat_bill


def file_url(path: Path) -> str:
    return f"sqlite+aiosqlite:///{path}"


class TestSqliteFileStore(StoreContract):
    @pytest.fixture
    def url(self, tmp_path: Path) -> str:
        return file_url(tmp_path / "parley.db")

    @pytest.fixture
    async def store(self, url: str, clock: FakeClock) -> AsyncIterator[Store]:
        store = await Store.open(url, clock=clock)
        yield store
        await store.close()

    @pytest.fixture
    async def second_store(self, url: str, clock: FakeClock) -> AsyncIterator[Store]:
        store = await Store.open(url, clock=clock)
        yield store
        await store.close()


class TestSqliteMemoryStore(StoreContract):
    @pytest.fixture
    async def store(self, clock: FakeClock) -> AsyncIterator[Store]:
        store = await Store.open("sqlite+aiosqlite:///:memory:", clock=clock)
        yield store
        await store.close()

    @pytest.fixture
    def second_store(self) -> Store:
        pytest.skip("an in-memory database belongs to one Store")


async def test_migrations_create_every_table_on_an_empty_file(tmp_path: Path) -> None:
    url = file_url(tmp_path / "parley.db")
    async with await Store.open(url, migrate=False) as store:
        assert await store.current_revision() is None
        assert await table_names(url) == set()
        await store.upgrade()
        assert await store.current_revision() == head_revision() == SCHEMA_REVISION
    assert await table_names(url) == TABLES
    assert {"messages_fts", "messages_fts_data"} <= await table_names(url, search=True)


def test_a_store_already_at_the_schema_revision_starts_without_loading_alembic(
    tmp_path: Path,
) -> None:
    url = file_url(tmp_path / "parley.db")
    program = (
        "import asyncio, sys\n"
        "from bot.store import Store\n"
        "async def main():\n"
        f"    store = await Store.open({url!r})\n"
        "    print(await store.current_revision(), 'alembic' in sys.modules)\n"
        "    await store.close()\n"
        "asyncio.run(main())\n"
    )
    first = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True)
    second = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True)
    assert first.stdout.split() == [SCHEMA_REVISION, "True"], first.stderr  # migrated it
    assert second.stdout.split() == [SCHEMA_REVISION, "False"], second.stderr  # nothing to do


async def test_migrated_schema_matches_the_table_definitions(tmp_path: Path) -> None:
    url = file_url(tmp_path / "parley.db")
    await (await Store.open(url)).close()
    assert await schema_diff(url) == []


async def test_downgrade_to_base_removes_every_table(tmp_path: Path) -> None:
    url = file_url(tmp_path / "parley.db")
    await (await Store.open(url)).close()
    engine = create_engine(url)
    async with engine.begin() as conn:
        await conn.run_sync(lambda sync: command.downgrade(alembic_config(sync), "base"))
    await engine.dispose()
    assert await table_names(url, search=True) == {"alembic_version"}


async def test_two_stores_opening_a_new_file_at_once_both_reach_head(tmp_path: Path) -> None:
    url = file_url(tmp_path / "parley.db")
    stores = await asyncio.gather(Store.open(url), Store.open(url))
    for store in stores:
        assert await store.current_revision() == head_revision()
        await store.close()


async def test_file_database_uses_wal_busy_timeout_and_foreign_keys(tmp_path: Path) -> None:
    path = tmp_path / "parley.db"
    await (await Store.open(file_url(path))).close()
    engine = create_engine(file_url(path))
    async with engine.connect() as conn:
        pragmas = {
            name: (await conn.execute(text(f"PRAGMA {name}"))).scalar_one()
            for name in (
                "journal_mode",
                "busy_timeout",
                "foreign_keys",
                "synchronous",
                "wal_autocheckpoint",
            )
        }
    await engine.dispose()
    assert pragmas == {
        "journal_mode": "wal",
        "busy_timeout": 5000,
        "foreign_keys": 1,
        "synchronous": 1,
        "wal_autocheckpoint": 0,  # the Store checkpoints in the background instead
    }
    # WAL is a property of the file, not just of our connections.
    with sqlite3.connect(path) as raw:
        assert raw.execute("PRAGMA journal_mode").fetchone() == ("wal",)


async def test_the_store_checkpoints_the_wal_off_the_writers_path(tmp_path: Path) -> None:
    """No commit pays for a checkpoint (autocheckpoint is off): `checkpoint` moves the WAL into
    the database, and by default a background task calls it while the store is open."""
    path = tmp_path / "parley.db"
    store = await Store.open(file_url(path), checkpoint_every=None)
    try:
        conversation = await store.ensure_conversation(
            ConversationKey("discord", "g", "c", "t"), "u1", "hello"
        )
        for i in range(300):  # ~6 MB: well past SQLite's 1,000-page autocheckpoint mark
            await store.add_message(conversation.id, "user", "x" * 20_000 + str(i), user_id="u1")
        busy, frames, done = await store.checkpoint()
        assert frames > 1000  # the WAL was never checkpointed and restarted on the way
        assert (busy, done) == (0, frames)
    finally:
        await store.close()
    with sqlite3.connect(path) as raw:
        assert raw.execute("SELECT count(*) FROM messages").fetchone() == (300,)

    store = await Store.open(file_url(path))
    checkpoints = store._checkpoints
    assert checkpoints is not None and not checkpoints.done()
    await store.close()
    assert checkpoints.cancelled() and store._checkpoints is None


async def test_open_creates_the_missing_parent_directory(tmp_path: Path) -> None:
    path = tmp_path / "deep" / "er" / "parley.db"
    async with await Store.open(file_url(path)) as store:
        assert await store.ping()
    assert path.exists()


async def test_bare_sqlite_url_gets_the_async_driver(tmp_path: Path) -> None:
    async with await Store.open(f"sqlite:///{tmp_path / 'parley.db'}") as store:
        assert store.dialect == "sqlite"
        assert await store.ping()


async def test_a_turn_left_streaming_by_a_crash_is_recovered_after_reopening(
    tmp_path: Path, clock: FakeClock
) -> None:
    url = file_url(tmp_path / "parley.db")
    before = await Store.open(url, clock=clock)
    conversation = await before.ensure_conversation(KEY, "u1", "hello")
    question = await before.add_message(conversation.id, "user", "question", user_id="u1")
    answered = await before.add_message(conversation.id, "assistant", "done", parent_id=question.id)
    stuck = await before.add_message(
        conversation.id, "assistant", "half an ans", status="streaming", parent_id=question.id
    )
    await before.close()  # the process dies here; nothing finishes the turn

    async with await Store.open(url, clock=clock) as after:
        turns = TurnStore(after)
        recovered = [turn.message for turn in await turns.recover(flat_bill)]
        assert [(m.id, m.status, m.content) for m in recovered] == [
            (stuck.id, "interrupted", "half an ans")
        ]
        assert await after.get_message(answered.id) == answered
        assert await after.get_message(question.id) == question
        assert await turns.recover(flat_bill) == []


async def test_ping_is_false_once_the_store_cannot_reach_its_database(tmp_path: Path) -> None:
    store = Store(create_engine(file_url(tmp_path / "parley.db")))
    (tmp_path / "parley.db").mkdir()  # a directory where the database file should be
    assert await store.ping() is False
    await store.close()


async def test_the_message_counting_trigger_follows_its_migration(tmp_path: Path) -> None:
    await counting_follows_its_migration(file_url(tmp_path / "parley.db"))
