"""Rows as the rest of the core sees them: plain frozen dataclasses, no SQLAlchemy types."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Literal

from bot.domain import ConversationKey
from bot.ports import MessageRef
from bot.store.convert import key_at, platform_tenant

MessageStatus = Literal["streaming", "complete", "interrupted", "error"]
MessageRole = Literal["system", "user", "assistant"]
UsageKind = Literal["chat", "image"]


class _Placed:
    """A stored record's place: `.key` and `.tenant` from its platform, tenant id, channel and
    thread (the one parse of a "<platform>:<tenant>" id)."""

    __slots__ = ()
    platform: str
    tenant_id: str
    channel_id: str
    thread_id: str

    @property
    def tenant(self) -> str:
        """The platform's own tenant id (guild, team, "dm"), without the platform."""
        return platform_tenant(self.tenant_id)

    @property
    def key(self) -> ConversationKey:
        return key_at(self.platform, self.tenant_id, self.channel_id, self.thread_id)


@dataclass(frozen=True, slots=True)
class Conversation(_Placed):
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
    context_start_id: int | None = None
    """`/new`: history ignores messages with an id up to this one (None: all of them count)."""


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
    tool_rounds: str | None = None
    """An answer's rounds of tool calls and their results, as JSON (bot/engine/history.py)."""
    attachments: str | None = None
    """The text of the files a user turn came with, as JSON (bot/attachments.py)."""


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
    tool_rounds: str | None = None


@dataclass(frozen=True, slots=True)
class UsageEntry:
    """One line of the usage ledger. `cost` None: the price was unknown (tokens still count)."""

    tenant_id: str
    user_id: str
    kind: UsageKind
    provider: str
    model: str
    prompt_tokens: int
    completion_tokens: int
    cost: Decimal | None
    conversation_id: int | None = None
    message_id: int | None = None


# -- running turns (bot/store/turns_repo.py) ------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TurnProgress:
    """A running turn as saved every few seconds: its text so far and the messages showing it."""

    message_id: int
    content: str
    refs: tuple[MessageRef, ...]
    provider: str | None = None
    model: str | None = None


@dataclass(frozen=True, slots=True)
class InterruptedTurn:
    """A turn whose process stopped mid-reply (its lease ran out), taken over to be finished:
    the text it had saved, where it was shown, and who asked."""

    message: StoredMessage
    conversation: Conversation
    user_id: str
    refs: tuple[MessageRef, ...]


@dataclass(frozen=True, slots=True)
class UsageTotals:
    """Sums over the usage ledger for one tenant (and optionally one user) since a moment."""

    prompt_tokens: int
    completion_tokens: int
    cost: Decimal
    count: int


# -- images (bot/store/images_repo.py) -----------------------------------------------------------

ImageJobStatus = Literal[
    "quoted",
    "generating",
    "succeeded",
    "failed",
    "refused",
    "unknown",
    "cancelled",
    "expired",
    "superseded",
]


@dataclass(frozen=True, slots=True)
class ImageAlternative:
    """Another catalog entry offered on a quote, at its own price."""

    entry: str
    provider: str
    model: str
    tier: str
    estimate: Decimal


@dataclass(frozen=True, slots=True)
class ImageJob(_Placed):
    """A quote and, once confirmed, the generation it became (one row in `image_jobs`)."""

    id: str
    tenant_id: str
    platform: str
    channel_id: str
    thread_id: str
    user_id: str
    prompt: str
    options: dict[str, object]
    tier: str
    size: str
    entry: str
    provider: str
    model: str
    estimate: Decimal
    alternatives: tuple[ImageAlternative, ...]
    status: ImageJobStatus
    created_at: datetime
    expires_at: datetime
    claimed_at: datetime | None = None
    lease_until: datetime | None = None
    confirmed_entry: str | None = None
    confirmed_estimate: Decimal | None = None
    used_provider: str | None = None
    used_model: str | None = None
    fallback_from: str | None = None
    cost: Decimal | None = None
    duration_ms: int | None = None
    detail: str | None = None
    superseded_by: str | None = None
    finished_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class ImageUsage:
    """What one user (and their tenant) has spent on images, as counted when a click is claimed.

    Counted: jobs `generating`, `succeeded` or `unknown` (the last may have been charged); cost is
    the actual cost when known, else the confirmed estimate.
    """

    hour_count: int
    day_count: int
    day_cost: Decimal
    tenant_month_cost: Decimal


ClaimKind = Literal["claimed", "not_found", "not_yours", "taken", "expired", "limit"]


@dataclass(frozen=True, slots=True)
class ClaimResult:
    kind: ClaimKind
    job: ImageJob | None = None
    reason: str = ""
    """For "limit": the refusal to show; for "taken": the status the quote already had."""


@dataclass(frozen=True, slots=True)
class BreakerRecord:
    """One provider's shared circuit-breaker state (times are aware UTC)."""

    name: str
    state: str
    failures: tuple[float, ...]  # epoch seconds of the failures inside the window
    open_until: datetime | None
    probe_until: datetime | None
    probe_successes: int
    last_error: str | None
    updated_at: datetime | None


# -- personas and usage reports (bot/store/personas_repo.py, bot/store/usage_repo.py) ------------


@dataclass(frozen=True, slots=True)
class Persona:
    """A named system prompt with model parameters, defined per tenant."""

    id: int
    tenant_id: str
    name: str
    system_prompt: str
    model: str | None
    temperature: float | None
    top_p: float | None
    max_tokens: int | None
    tools: tuple[str, ...]
    created_by: str
    created_at: datetime
    updated_at: datetime
    show_reasoning: str | None = None
    """"summary" adds the model's reasoning, folded, under each answer; None: SHOW_REASONING."""


@dataclass(frozen=True, slots=True)
class UsageLine:
    """Ledger sums for one (kind, provider, model) over a period."""

    kind: UsageKind
    provider: str
    model: str
    prompt_tokens: int
    completion_tokens: int
    cost: Decimal
    count: int

    @property
    def tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


@dataclass(frozen=True, slots=True)
class UserSpend:
    """One user's ledger sums over a period (a tenant's top users)."""

    user_id: str
    tokens: int
    cost: Decimal
    count: int
