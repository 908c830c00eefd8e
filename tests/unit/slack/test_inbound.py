"""What comes in to /slack/events, without a process: signatures, shapes, request keys and
pruning."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from datetime import datetime
from urllib.parse import urlencode

import pytest
import pytest_asyncio
from slack_bolt.request.async_request import AsyncBoltRequest
from slack_sdk.signature import SignatureVerifier

from adapters.slack.inbound import (
    KEEP,
    MalformedRequest,
    bolt_request,
    is_signed,
    is_ssl_check,
    request_key,
)
from bot.ops.background import forget_claims, keep_forgetting_claims
from bot.store import Store
from tests.fakes.clock import FakeClock
from tests.fakes.slack.sender import signature

SECRET = "shh-its-a-secret"
FORM = "application/x-www-form-urlencoded"
VERIFIER = SignatureVerifier(SECRET)


def signed(body: str, timestamp: str | None = None) -> dict[str, str]:
    timestamp = timestamp or str(int(time.time()))
    return {
        "X-Slack-Request-Timestamp": timestamp,
        "X-Slack-Signature": signature(SECRET, timestamp, body),
    }


def test_only_a_fresh_signature_over_these_bytes_is_valid() -> None:
    body = "command=%2Fchat&text=hi"
    assert is_signed(VERIFIER, body.encode(), signed(body))
    assert not is_signed(VERIFIER, b"command=%2Fchat&text=ho", signed(body))
    stale = str(int(time.time()) - 6 * 60)
    assert not is_signed(VERIFIER, body.encode(), signed(body, stale))
    for timestamp in ("soon", "²", "", "1" * 40):  # never handed to int()
        headers = signed(body) | {"X-Slack-Request-Timestamp": timestamp}
        assert not is_signed(VERIFIER, body.encode(), headers)
    assert not is_signed(VERIFIER, b"\xff\xfe", signed("x"))
    assert not is_signed(VERIFIER, body.encode(), {})


def test_ssl_check_is_exactly_ssl_check_1() -> None:
    assert is_ssl_check(b"ssl_check=1&token=t", FORM)
    assert not is_ssl_check(b"ssl_check=true&token=t", FORM)
    assert not is_ssl_check(b"ssl_check=1", "application/json")
    assert not is_ssl_check(b"command=%2Fchat&ssl_check=0", FORM)


@pytest.mark.parametrize(
    ("content_type", "body"),
    [
        ("application/json", "{"),
        ("application/json", "[]"),
        ("application/json", "{}"),
        (FORM, "payload=%7B"),
        (FORM, "payload=%22x%22"),
        (FORM, "text=hello"),
        ("text/plain", "command=%2Fchat"),
    ],
)
def test_bodies_slack_never_sends_are_malformed(content_type: str, body: str) -> None:
    with pytest.raises(MalformedRequest):
        bolt_request(body.encode(), "", {"Content-Type": content_type})


def test_a_command_mentioning_payload_keeps_its_fields() -> None:
    body = urlencode({"command": "/chat", "text": "what is a payload?", "team_id": "T1"})
    request = bolt_request(body.encode(), "", {"Content-Type": FORM})
    assert request.body["text"] == "what is a payload?"
    assert request.context.team_id == "T1"


def _request(body: dict[str, object], headers: dict[str, str] | None = None) -> AsyncBoltRequest:
    return AsyncBoltRequest(body=body, headers=headers or {}, mode="socket_mode")  # type: ignore[arg-type]


def test_a_request_key_follows_the_signature_or_else_the_trigger() -> None:
    command = {"command": "/chat", "trigger_id": "1.2.3"}
    first = _request(command, signed("a", "100"))
    assert request_key(first) == request_key(_request(command, signed("a", "100")))
    assert request_key(first) != request_key(_request(command, signed("a", "101")))
    assert str(request_key(first)).startswith("request:")
    assert request_key(_request(command)) == "trigger:1.2.3"  # Socket Mode: no signature
    assert request_key(_request({"type": "block_actions"})) is None  # nothing to tell it by
    event = {"type": "event_callback", "event": {"type": "message"}}
    assert request_key(_request(event, signed("e"))) is None  # events: deduplicated per message


@pytest_asyncio.fixture
async def clock_and_store() -> AsyncIterator[tuple[FakeClock, Store]]:
    clock = FakeClock()
    store = await Store.open("sqlite+aiosqlite:///:memory:", clock=clock)
    yield clock, store
    await store.close()


async def test_a_prune_forgets_slacks_claims_older_than_ten_minutes(
    clock_and_store: tuple[FakeClock, Store],
) -> None:
    clock, store = clock_and_store
    await store.claim_event("slack", "request:old")  # a command
    await store.claim_event("slack", "T1:C1:1.000001")  # a message event
    await store.claim_event("discord", "old")  # another platform's claims are its own
    await clock.advance(KEEP.total_seconds() + 1)
    await store.claim_event("slack", "request:new")
    assert await forget_claims(store, "slack", KEEP, clock) == 2
    assert await store.claim_event("slack", "request:old")  # forgotten, so claimable again
    assert await store.claim_event("slack", "T1:C1:1.000001")
    assert not await store.claim_event("slack", "request:new")
    assert not await store.claim_event("discord", "old")


class Forgetting:
    """The one store call the pruner makes, recorded; the first one fails."""

    def __init__(self) -> None:
        self.calls: asyncio.Queue[tuple[datetime, str | None]] = asyncio.Queue()

    async def forget_events_before(self, cutoff: datetime, *, platform: str | None = None) -> int:
        self.calls.put_nowait((cutoff, platform))
        if self.calls.qsize() == 1:
            raise OSError("the database is away")
        return 1


async def test_the_pruner_runs_at_start_then_every_minute_through_failures() -> None:
    clock, store = FakeClock(), Forgetting()
    pruner = asyncio.create_task(
        keep_forgetting_claims(store, "slack", KEEP, clock=clock, every=60.0)
    )
    try:
        first = await asyncio.wait_for(store.calls.get(), 5)
        assert first == (clock.wall() - KEEP, "slack")
        await clock.advance(60)
        second = await asyncio.wait_for(store.calls.get(), 5)  # the failure was not fatal
        assert second == (clock.wall() - KEEP, "slack")
    finally:
        pruner.cancel()
