"""Structured logs, one line per event, with every configured secret redacted."""

from __future__ import annotations

import json
import logging
import re
import sys
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import TextIO

REDACTED = "[REDACTED]"
FIELDS = "fields"
"""LogRecord attribute holding an event's structured fields (see `event`)."""
# Shapes of credentials that should never be printed even when they are not our own settings.
# Discord interaction tokens travel in URL paths (discord.py logs those URLs at DEBUG).
_TOKEN_SHAPES = re.compile(
    r"(xox[abposr]-[A-Za-z0-9-]{8,}|xapp-[A-Za-z0-9-]{8,}|sk-[A-Za-z0-9_-]{16,}"
    r"|(?i:bearer)\s+[A-Za-z0-9._~+/=-]{12,}"
    r"|(?<=/webhooks/)\d+/[A-Za-z0-9._-]{32,}|(?<=/interactions/)\d+/[A-Za-z0-9._-]{32,})"
)

_SECRET_KEY = (
    r"(?:[A-Za-z0-9]+[_-])*(?:token|secret|password|passwd|authorization|api[_-]?key|apikey"
    r"|signature|credentials?|cookie)"
)
# A secret's value by its key, in the shapes payloads are logged in: JSON (`"token": "…"`),
# Python reprs of dicts (`'token': '…'`) and key=value text (`token=…`, query strings, headers).
# The key ends at a quote or the separator, so `prompt_tokens=12` is not one of them.
_BY_KEY = re.compile(
    rf"""(?ix)
    (?P<key>(?<![A-Za-z0-9_-])(?P<q>["']?){_SECRET_KEY}(?P=q)\s*[:=]\s*)
        (?P<v>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*')
    | (?P<bare>(?<![A-Za-z0-9_-]){_SECRET_KEY}=)(?P<bv>[^\s&,;'")\]}}]+)
    """
)

LIBRARY_LOGGERS = (
    "discord",
    "slack_bolt",
    "slack_sdk",
    "parley.slack.bolt",
    "aiohttp",
    "websockets",
    "asyncio",
)
"""Libraries that log whole payloads (gateway events, request bodies) at DEBUG: they stay at INFO
unless the operator asks for them (LOG_LEVEL_LIBRARIES)."""


def _by_key(match: re.Match[str]) -> str:
    if match.group("bare") is not None:
        return match.group("bare") + REDACTED
    quote = match.group("v")[0]
    return f"{match.group('key')}{quote}{REDACTED}{quote}"


def event(logger: logging.Logger, level: int, name: str, **fields: object) -> None:
    """One line per event: `name k=v ...` as text, or the fields as top-level JSON keys."""
    text = " ".join(f"{key}={'-' if value is None else value}" for key, value in fields.items())
    logger.log(level, "%s %s", name, text, extra={FIELDS: {"event": name, **fields}})


class RedactingFilter(logging.Filter):
    def __init__(self, secrets: Iterable[str]) -> None:
        super().__init__()
        self._secrets = sorted({s for s in secrets if len(s) >= 4}, key=len, reverse=True)

    def redact(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, REDACTED)
        return _BY_KEY.sub(_by_key, _TOKEN_SHAPES.sub(REDACTED, text))

    def filter(self, record: logging.LogRecord) -> bool:
        message = self.redact(record.getMessage())
        record.msg, record.args = message, None
        fields = getattr(record, FIELDS, None)
        if isinstance(fields, dict):
            setattr(record, FIELDS, {k: self._redact_value(v) for k, v in fields.items()})
        if record.exc_info and record.exc_info[1] is not None:
            record.exc_text = self.redact(logging.Formatter().formatException(record.exc_info))
            record.exc_info = None
        return True

    def _redact_value(self, value: object) -> object:
        return self.redact(value) if isinstance(value, str) else value


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        fields = getattr(record, FIELDS, None)
        if isinstance(fields, dict):
            entry |= {k: v for k, v in fields.items() if k not in entry}
        if record.exc_text:
            entry["exc"] = record.exc_text
        return json.dumps(entry, ensure_ascii=False)


def configure_logging(
    level: str = "INFO",
    fmt: str = "text",
    secrets: Iterable[str] = (),
    stream: TextIO | None = None,
    libraries: str | None = None,
) -> None:
    """Parley's own loggers at `level`; LIBRARY_LOGGERS at INFO or above unless `libraries`
    names their level; httpx and friends, which log URLs at INFO, at WARNING."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.addFilter(RedactingFilter(secrets))
    if fmt == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
    root = logging.getLogger()
    for existing in list(root.handlers):
        root.removeHandler(existing)
    root.addHandler(handler)
    root.setLevel(level.upper())
    # Libraries that log request URLs or headers at INFO stay quiet unless asked.
    for noisy in ("httpx", "httpcore", "aiosqlite", "alembic"):
        logging.getLogger(noisy).setLevel(libraries or max(logging.WARNING, root.level))
    for chatty in LIBRARY_LOGGERS:
        logging.getLogger(chatty).setLevel(libraries or max(logging.INFO, root.level))
