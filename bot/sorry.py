"""What a user is told when handling their request failed, on every platform.

The store's own words when it cannot write (STORE_FAILING: the disk or database is failing, so
retrying now does not help), else the one short SORRY. The log gets the details, the user never.
"""

from __future__ import annotations

from bot.store import StoreUnavailable

SORRY = "Sorry, something went wrong on my side. Please try again."


def cause_of(exc: BaseException) -> BaseException:
    """The error itself, out of a wrapper that keeps it as `original` (discord's
    CommandInvokeError)."""
    original = getattr(exc, "original", None)
    return original if isinstance(original, BaseException) else exc


def sorry(exc: BaseException) -> str:
    cause = cause_of(exc)
    return str(cause) if isinstance(cause, StoreUnavailable) else SORRY


def is_store_failure(exc: BaseException) -> bool:
    """Already logged by the store, once: log a line, not another traceback per request."""
    return isinstance(cause_of(exc), StoreUnavailable)
