"""Numbers typed into Slack commands or carried in button values, read strictly.

`str.isdigit` takes `²`, `int()` takes `٣`, ` 7 `, `+7` and `1_000`, and a 30-digit page number
overflowed the database's integers. Here a whole number is ASCII digits within a range the caller
names, and a decimal is ASCII digits with at most one point; anything else is None, for the caller
to answer with its usage line.
"""

from __future__ import annotations

import re

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
