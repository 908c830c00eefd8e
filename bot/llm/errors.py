"""Turn provider failures (HTTP status, error bodies, transport errors) into the error taxonomy.

One classifier reads every error shape we meet: the Cloudflare v4 envelope (`errors: [{code,
message}]`), OpenAI / OpenRouter `{"error": {type, code, message}}` and Anthropic `{"type": "error",
"error": {type, message}}`. Tables and rules: docs providers.md §1.5, §2.2, §3, §6, §7.3.
"""

from __future__ import annotations

import email.utils
import re
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import httpx

from bot.llm.types import (
    ConfigError,
    ErrorClass,
    LocalCongestion,
    ProviderError,
    QuotaError,
    RequestError,
    StreamTruncated,
    TransientError,
)

Classifier = Callable[[int | None, object, Mapping[str, str] | None], ProviderError]
"""(HTTP status or None for in-band errors, parsed JSON body or None, response headers) -> error."""

_CLASSES: dict[ErrorClass, type[ProviderError]] = {
    ErrorClass.REQUEST: RequestError,
    ErrorClass.TRANSIENT: TransientError,
    ErrorClass.QUOTA: QuotaError,
    ErrorClass.CONFIG: ConfigError,
}

_DEFAULT_MESSAGES: dict[ErrorClass, str] = {
    ErrorClass.REQUEST: "the provider rejected the request",
    ErrorClass.TRANSIENT: "the provider is temporarily unavailable",
    ErrorClass.QUOTA: "the provider's quota or credit is used up",
    ErrorClass.CONFIG: "the provider rejected our credentials or model",
}

# Workers AI error codes (providers.md §1.5).
_WORKERS_AI_CODES: dict[int, ErrorClass] = {
    3036: ErrorClass.QUOTA,
    3040: ErrorClass.TRANSIENT,
    3007: ErrorClass.TRANSIENT,
    3008: ErrorClass.TRANSIENT,
    5007: ErrorClass.CONFIG,
    3042: ErrorClass.CONFIG,
    5016: ErrorClass.CONFIG,
    5018: ErrorClass.CONFIG,
    3041: ErrorClass.CONFIG,
    5019: ErrorClass.CONFIG,
    3039: ErrorClass.CONFIG,
    3023: ErrorClass.CONFIG,
    5004: ErrorClass.REQUEST,
    3003: ErrorClass.REQUEST,
    3006: ErrorClass.REQUEST,
    5005: ErrorClass.REQUEST,
}
_DAILY_QUOTA_CODE = 3036

_QUOTA_CODES = frozenset(
    {
        "insufficient_quota",
        "credit_balance_exhausted",
        "organization_usage_limit_exceeded",
        "billing_hard_limit_reached",
    }
)
_CONFIG_CODES = frozenset(
    {
        "model_not_found",
        "invalid_api_key",
        "authentication_error",
        "permission_error",
        "not_found_error",
        "unsupported_country_region_territory",
    }
)
_TRANSIENT_TYPES = frozenset(
    {
        "rate_limit_error",
        "rate_limit_exceeded",
        "overloaded_error",
        "api_error",
        "server_error",
        "service_unavailable_error",
        "server_is_overloaded",
        "timeout_error",
    }
)
_REQUEST_TYPES = frozenset(
    {"invalid_request_error", "request_too_large", "context_length_exceeded"}
)
_CREDIT_MESSAGE = re.compile(r"credit balance is too low|insufficient credits?", re.IGNORECASE)

_MAX_MESSAGE = 200
_REDACTED = "[redacted]"
_SECRET_PATTERNS = (
    re.compile(r"(?i)\bbearer\s+[\w\-\.~+/=]{8,}"),
    re.compile(r"\b(?:sk|pk|rk)-[\w\-\.\*]{6,}"),
    re.compile(r"\S*\*{4,}\S*"),  # keys a provider echoed back masked: "sk-pr****abcd"
    re.compile(r"(?i)(?<=[?&])(?:key|api_key|apikey|token|access_token)=[^&\s]+"),
    re.compile(r"\b[A-Za-z0-9_\-]{32,}\b"),  # long opaque tokens (Cloudflare API tokens are 40)
)


def redact(text: str, secrets: Iterable[str | None] = ()) -> str:
    """Make a provider message safe to show: no known secret, nothing key-like, short."""
    for secret in secrets:
        if secret and len(secret) >= 4:
            text = text.replace(secret, _REDACTED)
    for pattern in _SECRET_PATTERNS:
        text = pattern.sub(_REDACTED, text)
    text = " ".join(text.split())
    if len(text) > _MAX_MESSAGE:
        text = text[: _MAX_MESSAGE - 1].rstrip() + "…"
    return text


def next_utc_midnight(now: float | None = None) -> float:
    """Epoch seconds of the next 00:00 UTC (when the Workers AI daily allocation resets)."""
    now = time.time() if now is None else now
    return float((int(now) // 86_400 + 1) * 86_400)


def parse_retry_after(headers: Mapping[str, str] | None, now: float | None = None) -> float | None:
    """Seconds to wait from `retry-after-ms`, else `Retry-After` (seconds or an HTTP date)."""
    if not headers:
        return None
    lowered = {k.lower(): v for k, v in headers.items()}
    millis = lowered.get("retry-after-ms")
    if millis is not None:
        try:
            return max(0.0, float(millis) / 1000)
        except ValueError:
            pass
    value = lowered.get("retry-after")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        return None
    now = time.time() if now is None else now
    return max(0.0, when.timestamp() - now)


def classify_error(
    status: int | None,
    payload: object,
    headers: Mapping[str, str] | None = None,
    *,
    provider: str = "",
    secrets: Iterable[str | None] = (),
) -> ProviderError:
    """Build the ProviderError for one failure; `status` is None for an in-band stream error."""
    code, kind, message = _read_payload(payload)
    in_band = status is None or 200 <= status < 300
    if in_band and isinstance(code, int) and 400 <= code <= 599:
        status = code  # OpenRouter: the real status rides in error.code when HTTP said 200
    error_class = _decide(status, code, kind, message)
    reset_at = next_utc_midnight() if code == _DAILY_QUOTA_CODE else None
    text = redact(message, secrets) if message else ""
    return _CLASSES[error_class](
        text or _DEFAULT_MESSAGES[error_class],
        provider=provider,
        status=status,
        code=None if code is None else str(code),
        retry_after=parse_retry_after(headers),
        reset_at=reset_at,
    )


def is_error_payload(obj: Mapping[str, object]) -> bool:
    """True for an in-band failure: an `error` member, a failed v4 envelope, Anthropic's shape."""
    return bool(obj.get("error")) or obj.get("success") is False or obj.get("type") == "error"


def classifier_for(provider: str, secrets: Iterable[str | None] = ()) -> Classifier:
    """A Classifier bound to one provider's name and the secrets it must never echo."""
    kept = tuple(secrets)

    def classify(
        status: int | None, payload: object, headers: Mapping[str, str] | None
    ) -> ProviderError:
        return classify_error(status, payload, headers, provider=provider, secrets=kept)

    return classify


def transport_error(
    exc: httpx.RequestError | httpx.InvalidURL, *, provider: str, streaming: bool
) -> ProviderError:
    """Map an httpx failure to the taxonomy; never echo the exception text (it may hold a URL)."""
    if isinstance(exc, httpx.UnsupportedProtocol | httpx.InvalidURL):
        return ConfigError("the provider URL is not http(s)", provider=provider)
    if isinstance(exc, httpx.ConnectTimeout):
        return TransientError("timed out connecting to the provider", provider=provider)
    if isinstance(exc, httpx.ConnectError):
        return TransientError("could not connect to the provider", provider=provider)
    if isinstance(exc, httpx.PoolTimeout):
        return LocalCongestion("too many requests at once: no free connection", provider=provider)
    if isinstance(exc, httpx.ReadTimeout):
        return TransientError("the provider stopped responding (read timeout)", provider=provider)
    if isinstance(exc, httpx.WriteTimeout):
        return TransientError("timed out sending the request", provider=provider)
    if streaming and isinstance(exc, httpx.RemoteProtocolError | httpx.ReadError):
        return StreamTruncated("the connection closed mid-stream", provider=provider)
    return TransientError(
        f"connection to the provider failed ({type(exc).__name__})", provider=provider
    )


def _read_payload(payload: object) -> tuple[int | str | None, str | None, str]:
    """(code, type, message) from any known error body; Nones and "" when absent."""
    if not isinstance(payload, dict):
        return None, None, ""
    # Cloudflare v4 envelope: {"success": false, "errors": [{"code": 3040, "message": ...}]}.
    for key in ("errors", "error"):
        entries = payload.get(key)
        if isinstance(entries, list) and entries and isinstance(entries[0], dict):
            first = entries[0]
            return _code(first.get("code")), None, _text(first.get("message"))
    error = payload.get("error")
    if isinstance(error, dict):
        # OpenAI: code is a string (or null) and type names the family; OpenRouter: code is an int.
        code = _code(error.get("code"))
        kind = _text(error.get("type")) or None
        return code, kind, _text(error.get("message"))
    if isinstance(error, str):
        return None, None, error
    return None, None, _text(payload.get("message"))


def _decide(
    status: int | None, code: int | str | None, kind: str | None, message: str
) -> ErrorClass:
    if isinstance(code, int) and code in _WORKERS_AI_CODES:
        return _WORKERS_AI_CODES[code]
    names = {n for n in (code, kind) if isinstance(n, str)}
    if names & _QUOTA_CODES or any(n.endswith("_spend_limit_exceeded") for n in names):
        return ErrorClass.QUOTA
    if _CREDIT_MESSAGE.search(message):
        return ErrorClass.QUOTA
    if names & _CONFIG_CODES:
        return ErrorClass.CONFIG
    if status is not None and not 200 <= status < 300:
        return _by_status(status)
    if names & _TRANSIENT_TYPES:
        return ErrorClass.TRANSIENT
    if names & _REQUEST_TYPES:
        return ErrorClass.REQUEST
    return ErrorClass.TRANSIENT  # an unknown in-band failure: let the router try elsewhere


def _by_status(status: int) -> ErrorClass:
    if status in (401, 403, 404) or 300 <= status < 400:  # a redirect means a wrong base URL
        return ErrorClass.CONFIG
    if status == 402:
        return ErrorClass.QUOTA
    if status in (408, 409, 425, 429) or status >= 500:
        return ErrorClass.TRANSIENT
    return ErrorClass.REQUEST


def _code(value: Any) -> int | str | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value:
        return int(value) if value.isdigit() else value
    return None


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ""
