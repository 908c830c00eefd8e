"""Numbers typed into Slack commands and carried in button values: ASCII digits, in range."""

from __future__ import annotations

import pytest

from bot.commands.spec import decimal, whole_number


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("7", 7),
        ("0010", 10),
        ("10000", 10000),
        ("10001", None),
        ("0", None),
        ("²", None),
        ("٣", None),
        (" 7", None),
        ("+7", None),
        ("1_0", None),
        ("-1", None),
        ("1" * 30, None),
        ("", None),
    ],
)
def test_whole_numbers_are_ascii_digits_in_range(text: str, expected: int | None) -> None:
    assert whole_number(text, 1, 10_000) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("0.7", 0.7),
        ("1", 1.0),
        (".5", 0.5),
        ("nan", None),
        ("inf", None),
        ("1e3", None),
        ("٠.٥", None),
        ("1.", None),
        ("-0.5", None),
        ("1" * 30, None),
    ],
)
def test_decimals_are_plain_ascii(text: str, expected: float | None) -> None:
    assert decimal(text) == expected
