"""Which errors mean "the storage is failing", and how their log lines are paced."""

from __future__ import annotations

import logging
import sqlite3

import pytest
from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError, ProgrammingError

from bot.sorry import SORRY, sorry
from bot.store import STORE_FAILING, StoreUnavailable
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


def test_users_are_told_the_storage_is_failing_else_sorry() -> None:
    unavailable = StoreUnavailable()
    assert str(unavailable) == sorry(unavailable) == STORE_FAILING

    class Wrapper(Exception):  # as discord.py's CommandInvokeError keeps the error
        original = unavailable

    assert sorry(Wrapper()) == STORE_FAILING
    assert sorry(RuntimeError("secret detail")) == SORRY


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
