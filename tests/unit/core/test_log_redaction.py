"""The log redactor: secrets by value, by shape, and by key in the shapes libraries log payloads."""

from __future__ import annotations

import io
import json
import logging

import pytest

from bot.ops.logs import REDACTED, RedactingFilter, configure_logging

R = f"{REDACTED}"


@pytest.mark.parametrize(
    ("line", "shown"),
    [
        # discord.py's gateway payloads are dict reprs; an interaction's token is a credential
        ("{'t': 'INTERACTION_CREATE', 'd': {'token': 'aW50Zm9v', 'version': 1}}",
         f"{{'t': 'INTERACTION_CREATE', 'd': {{'token': '{R}', 'version': 1}}}}"),
        ("{'token': 'it\\'s quoted', 'id': 1}", f"{{'token': '{R}', 'id': 1}}"),
        ('{"access_token": "x\\"y", "refresh_token":"z"}',
         f'{{"access_token": "{R}", "refresh_token":"{R}"}}'),
        ('{"client_secret": "s", "api_key": "k", "password": "p"}',
         f'{{"client_secret": "{R}", "api_key": "{R}", "password": "{R}"}}'),
        ("headers: {'Authorization': 'Bot abc.def', 'X-Api-Key': 'k'}",
         f"headers: {{'Authorization': '{R}', 'X-Api-Key': '{R}'}}"),
        ("POST /api?token=abc123&channel=C1", f"POST /api?token={R}&channel=C1"),
        ("slack_bot_token='xoxb-1'", f"slack_bot_token='{R}'"),
        ("x-slack-signature=v0=abcdef", f"x-slack-signature={R}"),
    ],
)  # fmt: skip
def test_secrets_are_redacted_by_their_key(line: str, shown: str) -> None:
    assert RedactingFilter([]).redact(line) == shown


@pytest.mark.parametrize(
    "line",
    [
        "reply done prompt_tokens=812 completion_tokens=164 max_tokens=300",
        '{"prompt_tokens": 12, "tokens": 5, "api_key": null}',
        "the word token: not a secret",
    ],
)
def test_counts_and_mentions_of_tokens_are_left_alone(line: str) -> None:
    assert RedactingFilter([]).redact(line) == line


def test_library_loggers_stay_at_info_unless_asked_and_parley_follows_log_level() -> None:
    out = io.StringIO()
    try:
        configure_logging("DEBUG", "json", stream=out)
        logging.getLogger("discord.gateway").debug("payload %s", {"token": "t0"})
        logging.getLogger("parley.chat").debug("ours")
        assert [json.loads(line)["msg"] for line in out.getvalue().splitlines()] == ["ours"]
        configure_logging("DEBUG", "json", stream=out, libraries="DEBUG")
        logging.getLogger("discord.gateway").debug("payload %s", {"token": "t0"})
        assert json.loads(out.getvalue().splitlines()[-1])["msg"] == f"payload {{'token': '{R}'}}"
    finally:
        configure_logging("WARNING")
