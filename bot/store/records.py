"""Rows as the rest of the core sees them: plain frozen dataclasses, no SQLAlchemy types."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Literal

MessageStatus = Literal["streaming", "complete", "interrupted", "error"]
MessageRole = Literal["system", "user", "assistant"]
UsageKind = Literal["chat", "image"]


@dataclass(frozen=True, slots=True)
class Conversation:
    id: int
    platform: str
    tenant_id: str
    channel_id: str
    thread_id: str
    user_id: str
    title: str
    model: str | None
    persona: str | None
    message_count: int
    last_message_at: datetime | None
    archived: bool
    created_at: datetime


@dataclass(frozen=True, slots=True)
class StoredMessage:
    id: int
    conversation_id: int
    role: MessageRole
    content: str
    status: MessageStatus
    user_id: str | None
    parent_id: int | None
    model: str | None
    provider: str | None
    finish_reason: str | None
    prompt_tokens: int | None
    completion_tokens: int | None
    cost: Decimal | None
    ttft_ms: int | None
    duration_ms: int | None
    created_at: datetime


@dataclass(frozen=True, slots=True)
class TurnResult:
    """What the engine writes when an assistant turn ends, whatever the finish reason."""

    content: str
    status: MessageStatus
    finish_reason: str | None
    model: str | None
    provider: str | None
    prompt_tokens: int | None
    completion_tokens: int | None
    cost: Decimal | None
    ttft_ms: int | None
    duration_ms: int | None


@dataclass(frozen=True, slots=True)
class UsageTotals:
    """Sums over the usage ledger for one tenant (and optionally one user) since a moment."""

    prompt_tokens: int
    completion_tokens: int
    cost: Decimal
    count: int
