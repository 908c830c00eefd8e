"""How the store fails: its errors, which driver errors mean the storage itself is failing,
and a log that says so once, then at most once a minute, then that it works again."""

from __future__ import annotations

import logging

from sqlalchemy.exc import DBAPIError, InterfaceError, InternalError, OperationalError

from bot.clock import Clock
from bot.errors import UserError

log = logging.getLogger("bot.store.repo")


class StoreError(Exception):
    """Base of the Store's own errors (driver errors pass through as SQLAlchemy's)."""


class NotFoundError(StoreError, LookupError):
    """The conversation or message an update names does not exist."""


STORE_FAILING = (
    "Parley can't save anything right now (its storage is failing), so it can't do this."
    " Please try again later."
)
"""What a user is told when a write fails in the database or its disk (every platform)."""


class StoreUnavailable(StoreError, UserError):
    """A write failed in the database or under it (disk full, I/O error, connection lost);
    its message is STORE_FAILING, for users. The driver's error is its __cause__."""

    def __init__(self) -> None:
        UserError.__init__(self, STORE_FAILING, code="store_failing")


STORE_BUSY = (
    "Parley is too busy to take this right now (every connection to its database is in use)."
    " Please try again in a minute."
)
"""What a user is told when no database connection came free in time (every platform)."""


class StoreBusy(StoreUnavailable):
    """Every connection of the pool stayed in use for its whole timeout: the database works,
    the process has more to do than connections (DATABASE_POOL_SIZE); its message is STORE_BUSY.
    Not a failing store: no write is marked failing (a readiness ping that waited it out says
    not ready, so a load balancer sends the next requests to another replica)."""

    def __init__(self) -> None:
        UserError.__init__(self, STORE_BUSY, code="store_busy")


_FAILING_SQLSTATES = ("08", "53", "57P", "58")
"""PostgreSQL: connection exceptions, insufficient resources (disk full, out of memory),
operator intervention (shutdown), system errors (I/O)."""


def is_storage_failure(exc: BaseException) -> bool:
    """The database or its disk failed, rather than the statement (a constraint, a bug)."""
    if isinstance(exc, (OperationalError, InterfaceError, InternalError)):
        return True  # SQLite: "database or disk is full", "disk I/O error"; lost connections
    if isinstance(exc, DBAPIError):
        state = str(getattr(exc.orig, "sqlstate", None) or "")
        return state.startswith(_FAILING_SQLSTATES)
    return isinstance(exc, OSError)


LOG_REPEAT_EVERY = 60.0
"""Seconds between log lines about a failure that goes on (writes, WAL checkpoints)."""


class FailureLog:
    """One warning when something starts failing, then at most one per LOG_REPEAT_EVERY with a
    count, and one info line when it works again: a full disk is a few lines, not one a second."""

    def __init__(self, what: str, clock: Clock) -> None:
        self.what = what
        self._clock = clock
        self.failures = 0
        self._unlogged = 0
        self._logged_at = 0.0

    @property
    def failing(self) -> bool:
        return self.failures > 0

    def failed(self, exc: BaseException) -> None:
        now = self._clock.now()
        self.failures += 1
        self._unlogged += 1
        if self.failures == 1:
            log.warning("%s failing: %s", self.what, _reason(exc))
        elif now - self._logged_at >= LOG_REPEAT_EVERY:
            log.warning(
                "%s still failing: %d failures since the last line (%d in all): %s",
                self.what,
                self._unlogged,
                self.failures,
                _reason(exc),
            )
        else:
            return
        self._logged_at, self._unlogged = now, 0

    def worked(self) -> None:
        if self.failures:
            log.info("%s working again after %d failures", self.what, self.failures)
        self.failures = self._unlogged = 0


def _reason(exc: BaseException) -> str:
    """The error's type and the driver's short message (no statement, no parameters)."""
    orig = getattr(exc, "orig", None) or exc
    return f"{type(orig).__name__}: {str(orig).splitlines()[0][:200] if str(orig) else ''}"
