"""/image's text options, parsed before anything is quoted."""

from __future__ import annotations

import pytest

from bot.commands.spec import BadOptions, parse
from bot.commands.table import IMAGE
from bot.domain import ConversationKey
from bot.images.engine import ImageRequest

KEY = ConversationKey("slack", "T1", "C1", "")


def parse_image_command(key: ConversationKey, user: str, text: str) -> ImageRequest:
    """What the Slack adapter makes of /image's text."""
    return ImageRequest(key, user, **parse(IMAGE, text, "slack"))


def test_options_are_taken_out_of_the_prompt() -> None:
    request = parse_image_command(
        KEY, "U1", 'a fox\'s den at dusk quality:High size:1536x1024 negative:"blurry, text" seed:7'
    )
    assert request.prompt == "a fox's den at dusk"
    assert (request.quality, request.size, request.negative, request.seed) == (
        "high",
        "1536x1024",
        "blurry, text",
        7,
    )
    assert request.provider is None and request.steps is None


def test_a_prompt_prefix_and_words_with_colons_stay_in_the_prompt() -> None:
    request = parse_image_command(KEY, "U1", "prompt: a sign saying 12:30 provider:together")
    assert request.prompt == "a sign saying 12:30" and request.provider == "together"


@pytest.mark.parametrize("text", ["a cat seed:abc", "a cat steps:2 steps:3"])
def test_bad_options_are_refused(text: str) -> None:
    with pytest.raises(BadOptions):
        parse_image_command(KEY, "U1", text)
