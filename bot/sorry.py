"""What a user is told when handling their request failed, on every platform.

`apologize(log, exc, what, *args)` is every adapter's one catch: a `UserError` (bot.errors: a
refusal, or the store saying it cannot write) is shown as it is; anything else is logged under
a fresh reference and the user sees one line carrying that reference, so an operator finds the
traceback from a user's screenshot. The log gets the details, the user never.
"""

from __future__ import annotations

import logging
import secrets

from bot.errors import UserError


def sorry_with(ref: str) -> str:
    return f"Sorry, something went wrong on my side (ref {ref}). Please try again."


def cause_of(exc: BaseException) -> BaseException:
    """The error itself, out of a wrapper that keeps it as `original` (discord's
    CommandInvokeError)."""
    original = getattr(exc, "original", None)
    return original if isinstance(original, BaseException) else exc


def apologize(log: logging.Logger, exc: BaseException, what: str, *args: object) -> str:
    """Log `exc` as the failure of `what % args` and return what to tell the user."""
    cause = cause_of(exc)
    if isinstance(cause, UserError):
        log.info("%s refused code=%s", what % args, cause.code)
        return str(cause)
    ref = secrets.token_hex(4)
    log.error("%s failed ref=%s", what % args, ref, exc_info=cause)
    return sorry_with(ref)
