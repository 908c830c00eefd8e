"""clean_text and StreamText: what JSON can carry but UTF-8 stores cannot, made storable."""

from __future__ import annotations

import pytest

from bot.domain import ChatRequest, ConversationKey
from bot.engine.personas import PersonaSpec
from bot.images.engine import ImageRequest
from bot.text import StreamText, clean_text

GRIN = "\U0001f600"  # the JSON escapes \ud83d\ude00


@pytest.mark.parametrize(
    ("raw", "clean"),
    [
        ("plain ascii", "plain ascii"),
        ("café 日本 " + GRIN, "café 日本 " + GRIN),
        ("a\ud83d\ude00b", "a" + GRIN + "b"),  # a pair decoded escape by escape
        ("lone \ud800 high", "lone \ufffd high"),
        ("lone \udc00 low", "lone \ufffd low"),
        ("\ude00\ud83d", "\ufffd\ufffd"),  # the wrong order is no pair
        ("nul\x00byte\x00", "nulbyte"),
        ("\x00\ud800", "\ufffd"),
        ("", ""),
    ],
)
def test_clean_text(raw: str, clean: str) -> None:
    assert clean_text(raw) == clean
    clean_text(raw).encode("utf-8")  # storable anywhere


def test_a_pair_split_between_pieces_is_joined() -> None:
    pieces = StreamText()
    assert pieces.feed("Smile \ud83d") == "Smile "  # the high half waits for the next piece
    assert pieces.feed("\ude00!") == GRIN + "!"
    assert pieces.flush() == ""


def test_a_piece_that_is_only_a_high_surrogate_waits() -> None:
    pieces = StreamText()
    assert [pieces.feed("\ud83d"), pieces.feed("\ude00")] == ["", GRIN]


def test_a_high_surrogate_at_the_end_of_the_stream_is_a_replacement() -> None:
    pieces = StreamText()
    assert pieces.feed("cut \ud83d") == "cut "
    assert pieces.flush() == "\ufffd"
    assert pieces.flush() == ""


def test_a_held_half_before_a_piece_without_its_pair_is_a_replacement() -> None:
    pieces = StreamText()
    pieces.feed("a\ud83d")
    assert pieces.feed("b") == "\ufffdb"


def test_what_users_type_is_cleaned_where_the_core_takes_it() -> None:
    key = ConversationKey("slack", "T1", "C1", "1.2")
    assert ChatRequest(key, "U1", "hi\x00 \ud800", user_name="a\ud800").text == "hi \ufffd"
    assert ChatRequest(key, "U1", "x", user_name="a\ud800").user_name == "a\ufffd"
    spec = PersonaSpec("pir\x00ate", "Say \ud83d\ude00")
    assert (spec.name, spec.system_prompt) == ("pirate", "Say " + GRIN)
    image = ImageRequest(key, "U1", "a fox\x00", negative="\udfff")
    assert (image.prompt, image.negative) == ("a fox", "\ufffd")
