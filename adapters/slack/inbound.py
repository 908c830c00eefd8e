"""What comes in to POST /slack/events: signed, well formed, and done once.

- The signature is checked on the raw body before anything is parsed (401 otherwise, as bolt
  answers); bolt checks it again as it dispatches.
- A signed body that is not a Slack request (bad JSON, a payload that is not an object) gets a 400
  and one log line, never a 500 or a traceback.
- A slash command or an interaction (block_actions, view_submission, shortcuts: everything that is
  not an Events API event, which turns.py deduplicates by message) is claimed in the store before
  any work, so an identical replay within Slack's 5 minutes is acknowledged and does nothing. Over
  HTTP its key is the signature with its timestamp: a replay repeats both, a new request differs.
  Socket Mode has no signature and bolt never sees the envelope id, so there it is the request's
  trigger_id, which Slack makes for every command and interaction.
- Claims (these and the message events') are kept KEEP and pruned every PRUNE_EVERY
  (bot.ops.background.keep_forgetting_claims).
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
from collections.abc import Awaitable, Callable, Mapping
from datetime import timedelta
from typing import Any
from urllib.parse import parse_qsl

from slack_bolt.context.async_context import AsyncBoltContext
from slack_bolt.request.async_internals import build_async_context
from slack_bolt.request.async_request import AsyncBoltRequest
from slack_bolt.response import BoltResponse
from slack_sdk.signature import SignatureVerifier

from bot.store import Store, StoreUnavailable

log = logging.getLogger("parley.slack")

PLATFORM = "slack"
KEEP = timedelta(minutes=10)
"""How long a claim is kept: bolt accepts a signed timestamp for 5 minutes, and Slack retries an
event for a few minutes (immediately, after 1 and after 5)."""
PRUNE_EVERY = 60.0
"""Seconds between prunes of old claims."""

_EVENTS_API = frozenset({"event_callback", "url_verification", "app_rate_limited"})
_TIMESTAMP = re.compile(r"[0-9]{1,12}")
_FORM = "application/x-www-form-urlencoded"


class MalformedRequest(ValueError):
    """A signed body that is not a request Slack sends."""


def is_ssl_check(body: bytes, content_type: str) -> bool:
    """Slack's unsigned certificate check (`ssl_check=1&token=…`), which bolt answers with 200."""
    if content_type != _FORM or len(body) > 1000:
        return False
    try:
        fields = dict(parse_qsl(body.decode("ascii"), keep_blank_values=True))
    except (UnicodeDecodeError, ValueError):
        return False
    return fields.get("ssl_check") == "1"


def is_signed(verifier: SignatureVerifier, body: bytes, headers: Mapping[str, str]) -> bool:
    """Slack's v0 signature over this body and timestamp, within 5 minutes of now."""
    timestamp = headers.get("X-Slack-Request-Timestamp", "")
    signature = headers.get("X-Slack-Signature", "")
    if not _TIMESTAMP.fullmatch(timestamp) or not signature:
        return False  # SignatureVerifier would raise on a timestamp that is not a number
    try:  # Slack signs text; a body that is not UTF-8 cannot carry its signature
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return verifier.is_valid(text, timestamp, signature)


def bolt_request(body: bytes, query: str, headers: Mapping[str, str]) -> AsyncBoltRequest:
    """The signed body as bolt's request; raises MalformedRequest for anything Slack never sends."""
    try:
        text = body.decode("utf-8")
        parsed = _parse(text, headers.get("Content-Type", ""))
        request = AsyncBoltRequest(body=text, query=query, headers=dict(headers))
    except (ValueError, TypeError, AttributeError, KeyError, IndexError) as exc:
        raise MalformedRequest(type(exc).__name__) from None
    if request.body != parsed:
        # bolt reads any form whose text contains the word "payload" as an interaction without
        # one, and so drops `/chat what is a payload?`: give it the fields as they are.
        request.body = parsed
        request.context = build_async_context(AsyncBoltContext({}), parsed)
    return request


def _parse(text: str, content_type: str) -> dict[str, Any]:
    """A JSON object with a type, or a form: an interaction's payload (such an object), else a
    slash command."""
    mime = content_type.partition(";")[0].strip().lower()
    if mime == "application/json":
        return _typed_object(json.loads(text))
    if mime != _FORM:
        raise ValueError(f"content type {mime!r}")
    fields = dict(parse_qsl(text, keep_blank_values=True))
    if "payload" in fields:
        return _typed_object(json.loads(fields["payload"]))
    if not fields.get("command"):
        raise ValueError("neither a command nor a payload")
    return fields


def _typed_object(value: object) -> dict[str, Any]:
    if not isinstance(value, dict) or not isinstance(value.get("type"), str):
        raise ValueError("not an object with a type")
    return value


def request_key(request: AsyncBoltRequest) -> str | None:
    """What identifies one command or interaction across its replays; None for Events API
    events (deduplicated per message in turns.py) and for what carries no identity."""
    body = request.body
    if body.get("type") in _EVENTS_API:
        return None
    timestamp = request.headers.get("x-slack-request-timestamp", [""])[0]
    signature = request.headers.get("x-slack-signature", [""])[0]
    if signature:
        digest = hashlib.sha256(f"{timestamp}:{signature}".encode()).hexdigest()
        return f"request:{digest}"
    trigger = body.get("trigger_id")
    return f"trigger:{trigger}" if isinstance(trigger, str) and trigger else None


Next = Callable[[], Awaitable[None]]
Middleware = Callable[..., Awaitable[BoltResponse | None]]


def once_per_request(store: Store) -> Middleware:
    """A global bolt middleware: each command and interaction is claimed once, by any replica,
    before a listener runs; a replay gets an empty 200 (the ack Slack already had) and nothing."""

    async def claim(
        req: AsyncBoltRequest, body: dict[str, Any], next_: Next
    ) -> BoltResponse | None:
        key = request_key(req)
        kind = body.get("command") or body.get("type") or "?"
        try:
            claimed = key is None or await store.claim_event(PLATFORM, key)
        except StoreUnavailable as exc:  # not claimed, so not done: say why
            log.warning("request refused kind=%s: the store cannot write", kind)
            if not body.get("command"):
                return BoltResponse(status=200, body="")
            refusal = {"response_type": "ephemeral", "text": str(exc)}
            return BoltResponse(
                status=200,
                body=json.dumps(refusal),
                headers={"content-type": "application/json"},
            )
        if not claimed:
            log.info("replayed request ignored kind=%s team=%s", kind, req.context.team_id)
            return BoltResponse(status=200, body="")
        await next_()
        return None

    return claim


def team_of(context: AsyncBoltContext, body: Mapping[str, Any]) -> str:
    """The workspace a request came from: the tenant of every conversation in it. An org-wide
    install's events may authorize no team (the top-level `team_id` names it) and its clicks
    carry no `team` (the clicker's `user.team_id` does)."""
    team = (
        context.team_id
        or body.get("team_id")
        or (body.get("team") or {}).get("id")
        or (body.get("user") or {}).get("team_id")
    )
    return str(team or context.enterprise_id or "")
