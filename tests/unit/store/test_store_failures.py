"""Which errors mean "the storage is failing", and how their log lines are paced."""

from __future__ import annotations

import asyncio
import logging
import re
import sqlite3
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError, ProgrammingError
from sqlalchemy.ext.asyncio import create_async_engine

from bot.domain import ConversationKey
from bot.sorry import apologize
from bot.store import STORE_BUSY, STORE_FAILING, Store, StoreBusy, StoreUnavailable
from bot.store.repo import LOG_REPEAT_EVERY, FailureLog, is_storage_failure
from tests.fakes.clock import FakeClock


class _PgError(Exception):
    def __init__(self, sqlstate: str) -> None:
        super().__init__(f"sqlstate {sqlstate}")
        self.sqlstate = sqlstate


def _wrapped(cls: type[DBAPIError], orig: Exception) -> DBAPIError:
    return cls("INSERT ...", {}, orig)


@pytest.mark.parametrize(
    ("error", "failing"),
    [
        (_wrapped(OperationalError, sqlite3.OperationalError("disk I/O error")), True),
        (_wrapped(OperationalError, sqlite3.OperationalError("database or disk is full")), True),
        (_wrapped(DBAPIError, _PgError("53100")), True),  # disk_full
        (_wrapped(DBAPIError, _PgError("08006")), True),  # connection_failure
        (_wrapped(DBAPIError, _PgError("57P01")), True),  # admin_shutdown
        (_wrapped(DBAPIError, _PgError("58030")), True),  # io_error
        (OSError(28, "No space left on device"), True),
        (_wrapped(IntegrityError, sqlite3.IntegrityError("UNIQUE constraint failed")), False),
        (_wrapped(ProgrammingError, sqlite3.ProgrammingError("bad parameter")), False),
        (_wrapped(DBAPIError, _PgError("22P02")), False),  # invalid_text_representation
        (ValueError("a bug"), False),
    ],
)
def test_storage_failures_are_told_from_statement_errors(error: Exception, failing: bool) -> None:
    assert is_storage_failure(error) is failing


def test_users_are_told_the_storage_is_failing_else_sorry_with_a_reference(
    caplog: pytest.LogCaptureFixture,
) -> None:
    log = logging.getLogger("parley.test")
    unavailable = StoreUnavailable()

    class Wrapper(Exception):  # as discord.py's CommandInvokeError keeps the error
        original = unavailable

    with caplog.at_level(logging.INFO, logger="parley.test"):
        assert apologize(log, Wrapper(), "turn %s", 7) == STORE_FAILING
        told = apologize(log, RuntimeError("secret detail"), "turn %s", 8)
    stored, failed = caplog.records
    assert (stored.levelno, stored.getMessage()) == (
        logging.INFO,
        "turn 7 refused code=store_failing",
    )
    assert stored.exc_info is None and not stored.exc_text  # no second traceback
    ref = re.fullmatch(
        r"Sorry, something went wrong on my side \(ref ([0-9a-f]{8})\)\. Please try again\.", told
    )
    assert ref is not None and "secret" not in told
    assert failed.levelno == logging.ERROR and failed.getMessage() == f"turn 8 failed ref={ref[1]}"
    # The traceback is in the log under the same reference (a redacting filter may have turned
    # it into exc_text already).
    assert failed.exc_info is not None or "secret detail" in (failed.exc_text or "")


async def test_a_failure_that_goes_on_is_one_line_a_minute_with_a_count(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock = FakeClock()
    failures = FailureLog("WAL checkpoint", clock)
    error = _wrapped(OperationalError, sqlite3.OperationalError("database or disk is full"))
    with caplog.at_level(logging.INFO, logger="bot.store.repo"):
        for _ in range(150):  # one a second for two and a half minutes
            failures.failed(error)
            await clock.advance(1.0)
        assert failures.failing
        failures.worked()
        failures.worked()
    lines = [r.getMessage() for r in caplog.records]
    assert lines[0] == "WAL checkpoint failing: OperationalError: database or disk is full"
    assert lines[1:3] == [
        "WAL checkpoint still failing: 60 failures since the last line (61 in all):"
        " OperationalError: database or disk is full",
        "WAL checkpoint still failing: 60 failures since the last line (121 in all):"
        " OperationalError: database or disk is full",
    ]
    assert lines[3:] == ["WAL checkpoint working again after 150 failures"]
    assert not failures.failing
    assert LOG_REPEAT_EVERY == 60.0


async def test_a_pool_that_stays_busy_is_told_as_busy_not_as_failing(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Every connection in use for the pool's whole timeout: the user is told Parley is busy
    (not that its storage fails, not "something went wrong"), readiness stays up, one warning."""
    url = f"sqlite+aiosqlite:///{tmp_path / 'parley.db'}"
    async with await Store.open(url):
        pass  # migrated
    engine = create_async_engine(url, pool_size=1, max_overflow=0, pool_timeout=0.1)
    store = Store(engine)
    key = ConversationKey("discord", "g1", "c1", "t1")
    held, release = asyncio.Event(), asyncio.Event()

    async def hold_the_one_connection() -> None:
        async with store._transaction(write=False) as conn:
            await conn.execute(select(1))
            held.set()
            await release.wait()

    holder = asyncio.create_task(hold_the_one_connection())
    try:
        await held.wait()
        with caplog.at_level(logging.INFO, logger="bot.store.repo"):
            with pytest.raises(StoreBusy) as busy:
                await store.ensure_conversation(key, "u1", "a topic")  # a write
            with pytest.raises(StoreBusy):
                await store.get_conversation(key)  # a read
            assert str(busy.value) == STORE_BUSY
            assert apologize(logging.getLogger("parley.test"), busy.value, "turn") == STORE_BUSY
            assert isinstance(busy.value, StoreUnavailable)  # every caller refuses the turn
            assert not store.writes.failing  # readiness stays up
            release.set()
            await holder
            conversation = await store.ensure_conversation(key, "u1", "a topic")
            assert conversation.id and not store.pool.failing
    finally:
        release.set()
        await holder
        await store.close()
    lines = [r.getMessage() for r in caplog.records if r.name == "bot.store.repo"]
    assert lines[0].startswith("database connections (pool exhausted) failing: TimeoutError")
    assert lines[1:] == ["database connections (pool exhausted) working again after 2 failures"]
