"""Classifying provider failures as request / transient / quota / config (providers.md §6)."""

from __future__ import annotations

import time
from email.utils import formatdate

import httpx
import pytest

from bot.llm.errors import (
    classify_error,
    next_utc_midnight,
    parse_retry_after,
    redact,
    transport_error,
)
from bot.llm.types import (
    ConfigError,
    LocalCongestion,
    ProviderError,
    QuotaError,
    RequestError,
    StreamTruncated,
    TransientError,
)


def _workers(code: int) -> dict[str, object]:
    return {"success": False, "errors": [{"code": code, "message": "x"}], "result": {}}


def _openai(type_: str, code: str | None = None, message: str = "m") -> dict[str, object]:
    return {"error": {"message": message, "type": type_, "param": None, "code": code}}


def _anthropic(type_: str, message: str = "m") -> dict[str, object]:
    return {"type": "error", "error": {"type": type_, "message": message}}


@pytest.mark.parametrize(
    ("code", "status", "expected"),
    [
        (3036, 429, QuotaError),
        (3040, 429, TransientError),
        (3007, 408, TransientError),
        (3008, 408, TransientError),
        (5007, 400, ConfigError),
        (3042, 404, ConfigError),
        (5016, 403, ConfigError),
        (5018, 403, ConfigError),
        (3041, 403, ConfigError),
        (5019, 405, ConfigError),
        (3039, 400, ConfigError),
        (5004, 400, RequestError),
        (3003, 400, RequestError),
        (3006, 413, RequestError),
        (5005, 405, RequestError),
        (10000, 401, ConfigError),  # Cloudflare auth error: by status
        (9999, 503, TransientError),  # unknown code: by status
    ],
)
def test_workers_ai_codes_map_to_their_class(
    code: int, status: int, expected: type[ProviderError]
) -> None:
    error = classify_error(status, _workers(code), provider="workers-ai")
    assert type(error) is expected
    assert error.code == str(code)
    assert error.status == status


def test_workers_ai_3036_is_quota_until_the_next_utc_midnight() -> None:
    error = classify_error(429, _workers(3036))
    assert isinstance(error, QuotaError)
    assert error.reset_at is not None
    assert error.reset_at % 86_400 == 0
    assert 0 < error.reset_at - time.time() <= 86_400


def test_next_utc_midnight_is_strictly_after_now() -> None:
    assert next_utc_midnight(86_400 * 3) == 86_400 * 4
    assert next_utc_midnight(86_400 * 3 + 1) == 86_400 * 4
    assert next_utc_midnight(86_400 * 4 - 0.5) == 86_400 * 4


@pytest.mark.parametrize(
    ("status", "body", "expected"),
    [
        (429, _openai("insufficient_quota", "insufficient_quota"), QuotaError),
        (429, _openai("insufficient_quota", "credit_balance_exhausted"), QuotaError),
        (429, _openai("insufficient_quota", "organization_spend_limit_exceeded"), QuotaError),
        (429, _openai("insufficient_quota", "project_spend_limit_exceeded"), QuotaError),
        (429, _openai("insufficient_quota", "organization_usage_limit_exceeded"), QuotaError),
        (429, _openai("requests", "rate_limit_exceeded"), TransientError),
        (429, _openai("tokens"), TransientError),
        (402, {"error": {"code": 402, "message": "Insufficient credits"}}, QuotaError),
        (401, _openai("invalid_request_error", "invalid_api_key"), ConfigError),
        (403, _openai("invalid_request_error"), ConfigError),
        (404, _openai("invalid_request_error", "model_not_found"), ConfigError),
        (400, _openai("invalid_request_error", "model_not_found"), ConfigError),
        (400, _openai("invalid_request_error"), RequestError),
        (413, _openai("invalid_request_error"), RequestError),
        (422, _openai("invalid_request_error"), RequestError),
        (408, _openai("timeout"), TransientError),
        (409, _openai("conflict"), TransientError),
        (500, _openai("server_error"), TransientError),
        (503, _openai("service_unavailable_error", "server_is_overloaded"), TransientError),
        (307, None, ConfigError),
    ],
)
def test_openai_style_errors_map_to_their_class(
    status: int, body: object, expected: type[ProviderError]
) -> None:
    assert type(classify_error(status, body)) is expected


@pytest.mark.parametrize(
    ("status", "body", "expected"),
    [
        (400, _anthropic("invalid_request_error", "messages: field required"), RequestError),
        (
            400,
            _anthropic(
                "invalid_request_error",
                "Your credit balance is too low to access the Anthropic API.",
            ),
            QuotaError,
        ),
        (401, _anthropic("authentication_error", "invalid x-api-key"), ConfigError),
        (403, _anthropic("permission_error"), ConfigError),
        (404, _anthropic("not_found_error", "model: claude-nope"), ConfigError),
        (413, _anthropic("request_too_large"), RequestError),
        (429, _anthropic("rate_limit_error"), TransientError),
        (500, _anthropic("api_error"), TransientError),
        (529, _anthropic("overloaded_error", "Overloaded"), TransientError),
    ],
)
def test_anthropic_errors_map_to_their_class(
    status: int, body: object, expected: type[ProviderError]
) -> None:
    assert type(classify_error(status, body)) is expected


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (_anthropic("overloaded_error", "Overloaded"), TransientError),
        (_anthropic("invalid_request_error"), RequestError),
        (_anthropic("authentication_error"), ConfigError),
        (_openai("server_error"), TransientError),
        (_openai("insufficient_quota", "insufficient_quota"), QuotaError),
        ({"error": {"code": 502, "message": "upstream down"}}, TransientError),
        ({"error": "something"}, TransientError),
        (None, TransientError),
    ],
)
def test_in_band_errors_are_classified_from_the_body(
    body: object, expected: type[ProviderError]
) -> None:
    assert type(classify_error(None, body)) is expected


def test_the_provider_message_is_kept_and_a_default_fills_in() -> None:
    assert classify_error(429, _workers(3040)).message == "x"
    assert classify_error(503, None).message == "the provider is temporarily unavailable"
    assert classify_error(401, b"<html>").message.startswith("the provider rejected")


def test_str_names_provider_and_status() -> None:
    error = classify_error(
        429, _openai("requests", "rate_limit_exceeded", "slow down"), provider="o"
    )
    assert str(error) == "o: slow down (HTTP 429)"


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"Retry-After": "7"}, 7.0),
        ({"retry-after": "1.5"}, 1.5),
        ({"retry-after-ms": "250", "retry-after": "9"}, 0.25),
        ({"retry-after-ms": "junk", "retry-after": "9"}, 9.0),
        ({"retry-after": "-3"}, 0.0),
        ({"retry-after": "soon"}, None),
        ({}, None),
        (None, None),
    ],
)
def test_retry_after_is_parsed_from_seconds_and_milliseconds(
    headers: dict[str, str] | None, expected: float | None
) -> None:
    assert parse_retry_after(headers) == expected


def test_retry_after_http_date_is_seconds_from_now() -> None:
    now = 1_800_000_000.0
    assert parse_retry_after({"Retry-After": formatdate(now + 30, usegmt=True)}, now=now) == 30.0
    assert parse_retry_after({"Retry-After": formatdate(now - 30, usegmt=True)}, now=now) == 0.0


def test_retry_after_header_lands_on_the_error() -> None:
    body = _openai("requests", "rate_limit_exceeded")
    error = classify_error(429, body, httpx.Headers({"Retry-After": "12"}))
    assert error.retry_after == 12.0


@pytest.mark.parametrize(
    "text",
    [
        "Incorrect API key provided: sk-proj-abcdefghijklmnop1234. See docs.",
        "Incorrect API key provided: sk-pro************************wxyz.",
        "header was Authorization: Bearer abcdefghijklmnopqrstuvwxyz123456",
        "token 0123456789abcdefABCDEF0123456789abcdefgh is not valid",
        "bad url https://x.example/v1?key=AIzaSyD-secret-value&alt=sse",
    ],
)
def test_redact_removes_anything_key_like(text: str) -> None:
    cleaned = redact(text)
    for secret in ("abcdefghijklmnop1234", "wxyz", "abcdefghijklmnopqrstuvwxyz123456"):
        assert secret not in cleaned
    assert "0123456789abcdefABCDEF" not in cleaned
    assert "AIzaSyD" not in cleaned
    assert "[redacted]" in cleaned


def test_redact_removes_known_secrets_and_keeps_ordinary_words() -> None:
    cleaned = redact("model llama-3.1-8b rejected key=hunter22 Bearer token missing", ["hunter22"])
    assert cleaned == "model llama-3.1-8b rejected key=[redacted] Bearer token missing"


def test_redact_keeps_messages_short() -> None:
    assert len(redact("word " * 200)) <= 200


@pytest.mark.parametrize(
    ("exc", "streaming", "expected"),
    [
        (httpx.ConnectError("refused"), False, TransientError),
        (httpx.ConnectTimeout("slow"), False, TransientError),
        (httpx.ReadTimeout("stalled"), True, TransientError),
        (httpx.PoolTimeout("busy"), False, LocalCongestion),  # ours, not the provider's fault
        (httpx.RemoteProtocolError("peer closed"), True, StreamTruncated),
        (httpx.ReadError("reset"), True, StreamTruncated),
        (httpx.RemoteProtocolError("peer closed"), False, TransientError),
        (httpx.UnsupportedProtocol("ftp"), False, ConfigError),
    ],
)
def test_transport_errors_map_to_the_taxonomy_without_echoing_details(
    exc: httpx.RequestError, streaming: bool, expected: type[ProviderError]
) -> None:
    error = transport_error(exc, provider="p", streaming=streaming)
    assert type(error) is expected
    assert error.provider == "p"
    assert str(exc) not in error.message
