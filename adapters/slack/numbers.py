"""What users type into Slack commands, read strictly: `key:value` options, and numbers typed or
carried in button values.

`str.isdigit` takes `²`, `int()` takes `٣`, ` 7 `, `+7` and `1_000`, and a 30-digit page number
overflowed the database's integers. Here a whole number is ASCII digits within a range the caller
names, and a decimal is ASCII digits with at most one point; anything else is None, for the caller
to answer with its usage line.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from bot.errors import UserError

_DIGITS = re.compile(r"[0-9]+")
_DECIMAL = re.compile(r"[0-9]+(?:\.[0-9]+)?|\.[0-9]+")
_DECIMAL_MAX_CHARS = 20


def whole_number(text: str, low: int, high: int) -> int | None:
    """`text` as a whole number from `low` to `high`, else None."""
    if len(text) > len(str(high)) or not _DIGITS.fullmatch(text):
        return None
    value = int(text)
    return value if low <= value <= high else None


def decimal(text: str) -> float | None:
    """`text` as a plain decimal (`0.7`, `1`, `.5`), else None; the caller checks its range."""
    if len(text) > _DECIMAL_MAX_CHARS or not _DECIMAL.fullmatch(text):
        return None
    return float(text)


class BadOptions(UserError):
    """A command's options cannot be read as typed; the message says which."""

    code = "bad_options"


def take_options(text: str, names: Iterable[str]) -> tuple[dict[str, str], str]:
    """The `name:value` options in `text` (a value with spaces in double quotes), each at most
    once, and the rest of the text with runs of spaces collapsed; raises BadOptions."""
    pattern = re.compile(rf'(?<!\S)({"|".join(names)}):("([^"]*)"|\S+)')
    found: dict[str, str] = {}
    for match in pattern.finditer(text):
        name = match.group(1)
        if name in found:
            raise BadOptions(f"`{name}` is given twice.")
        found[name] = match.group(3) if match.group(3) is not None else match.group(2)
    return found, re.sub(r"[ \t]{2,}", " ", pattern.sub(" ", text)).strip()
