"""The one user-facing error: what Parley refuses or cannot do, in words safe to show.

The core raises a `UserError` (or one of its kinds below it: a persona, a conversation, a
model, an image request, a prompt too long, the store failing); every adapter catches this one
type and shows `str(exc)`. `code` names the refusal for logs, metrics and tests, never the text.
Anything else that escapes a command is unexpected: `bot.sorry.apologize` logs it with a
reference and shows one generic line carrying it.
"""

from __future__ import annotations


class UserError(Exception):
    """A request refused or impossible; `str(self)` is for the user, `code` for machines."""

    code = "refused"

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code


class NotAllowed(UserError):
    """Only an admin (or the conversation's owner) may do this; the message says who may."""

    code = "not_allowed"
