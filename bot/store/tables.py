"""The schema as SQLAlchemy Core tables. The migrations must build exactly this (a test checks)."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    DateTime,
    Dialect,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    false,
    text,
)
from sqlalchemy.types import TypeDecorator

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

metadata = MetaData(naming_convention=NAMING_CONVENTION)

MESSAGE_STATUSES = ("streaming", "complete", "interrupted", "error")
MESSAGE_ROLES = ("system", "user", "assistant")
USAGE_KINDS = ("chat", "image")


class UTCDateTime(TypeDecorator[datetime]):
    """Aware UTC in, aware UTC out, on every dialect.

    SQLite has no time zones: values are stored as naive UTC text (fixed width, so they sort and
    compare correctly) and come back tagged UTC. PostgreSQL stores `timestamptz`. Naive datetimes
    are refused rather than guessed at.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError(f"naive datetime {value!r}: pass a timezone-aware UTC datetime")
        value = value.astimezone(UTC)
        if dialect.name == "sqlite":
            return value.replace(tzinfo=None)
        return value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


def _in(values: tuple[str, ...]) -> str:
    return ", ".join(f"'{v}'" for v in values)


tenants = Table(
    "tenants",
    metadata,
    # "<platform>:<external_id>", e.g. "discord:123" or "slack:T0123"; see convert.tenant_id_for.
    Column("id", String(200), primary_key=True),
    Column("platform", String(32), nullable=False),
    Column("external_id", String(160), nullable=False),
    Column("name", String(200), nullable=True),
    Column("created_at", UTCDateTime(), nullable=False),
)

conversations = Table(
    "conversations",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("platform", String(32), nullable=False),
    Column("tenant_id", String(200), ForeignKey("tenants.id", ondelete="CASCADE"), nullable=False),
    Column("channel_id", String(160), nullable=False),
    Column("thread_id", String(160), nullable=False, server_default=""),
    Column("user_id", String(160), nullable=False),
    Column("title", String(100), nullable=False, server_default=""),
    Column("model", String(200), nullable=True),
    Column("persona", String(200), nullable=True),
    Column("message_count", Integer, nullable=False, server_default=text("0")),
    Column("last_message_at", UTCDateTime(), nullable=True),
    Column("archived", Boolean(create_constraint=False), nullable=False, server_default=false()),
    # `/new` in a thread (migration 0004): history ignores messages with an id up to this one.
    Column("context_start_id", Integer, nullable=True),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("updated_at", UTCDateTime(), nullable=False),
    UniqueConstraint("platform", "tenant_id", "channel_id", "thread_id"),
)

Index(
    "ix_conversations_user_recent",
    conversations.c.tenant_id,
    conversations.c.user_id,
    conversations.c.last_message_at.desc(),
)

messages = Table(
    "messages",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column(
        "conversation_id",
        Integer,
        ForeignKey("conversations.id", ondelete="CASCADE"),
        nullable=False,
    ),
    # Regenerations are siblings: several assistant turns sharing the user turn they answer.
    Column("parent_id", Integer, ForeignKey("messages.id", ondelete="SET NULL"), nullable=True),
    Column("role", String(16), nullable=False),
    Column("content", Text, nullable=False, server_default=""),
    Column("status", String(16), nullable=False, server_default="complete"),
    Column("user_id", String(160), nullable=True),
    Column("model", String(200), nullable=True),
    Column("provider", String(64), nullable=True),
    Column("finish_reason", String(32), nullable=True),
    Column("prompt_tokens", Integer, nullable=True),
    Column("completion_tokens", Integer, nullable=True),
    Column("cost", BigInteger, nullable=True),  # nano-USD; Decimal USD at the Store's boundary
    Column("ttft_ms", Integer, nullable=True),
    Column("duration_ms", Integer, nullable=True),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("updated_at", UTCDateTime(), nullable=False),
    # Migration 0006: the process running a `streaming` turn renews its lease; past it the turn
    # is interrupted. `reply_refs` (JSON [[message id, channel], ...]) is where it is shown.
    Column("owner", String(32), nullable=True),
    Column("lease_until", UTCDateTime(), nullable=True),
    Column("reply_refs", Text, nullable=True),
    # Migration 0008: an answer's rounds of tool calls (JSON, bot/engine/history.py reads it).
    Column("tool_rounds", Text, nullable=True),
    # Migration 0010: what a user turn's files said (JSON, bot/attachments.py reads it).
    Column("attachments", Text, nullable=True),
    # Migration 0011: Stop, Approve or Deny pressed on a replica that does not run the turn (its
    # owner acts on them); `approval` is waiting | approved | denied while a tool call waits.
    Column("stop_requested_at", UTCDateTime(), nullable=True),
    Column("approval", String(16), nullable=True),
    CheckConstraint(f"status IN ({_in(MESSAGE_STATUSES)})", name="status"),
    CheckConstraint(f"role IN ({_in(MESSAGE_ROLES)})", name="role"),
)

Index("ix_messages_conversation_id_id", messages.c.conversation_id, messages.c.id)
Index("ix_messages_status", messages.c.status)
# Running turns only (migration 0006): a heartbeat renews its owner's leases and recovery looks
# for lapsed ones without scanning the table (the planner's statistics see only 'complete').
Index(
    "ix_messages_streaming_owner",
    messages.c.owner,
    messages.c.lease_until,
    sqlite_where=messages.c.status == "streaming",
    postgresql_where=messages.c.status == "streaming",
)

# Migration 0009 (search): `messages_fts`, FTS5's virtual table on SQLite (with its shadow
# tables messages_fts_data, _idx, _docsize, _config), a table of tsvectors with the GIN index
# ix_messages_fts_words on PostgreSQL; each is kept by triggers and differs by dialect, so
# neither is described here; bot/store/search_repo.py queries them.
SEARCH_OBJECTS = ("messages_fts", "ix_messages_fts")
SLACK_OBJECTS = ("slack_installations", "slack_bots", "slack_oauth_states")
"""Migration 0014: slack_sdk's OAuth tables, built and read by slack_sdk (adapters/slack)."""


def is_search_object(name: str | None) -> bool:
    """Objects of the schema that `metadata` does not describe: search's, and slack_sdk's."""
    return bool(name) and str(name).startswith(SEARCH_OBJECTS + SLACK_OBJECTS)


usage_ledger = Table(
    "usage_ledger",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    # Not a foreign key: the ledger is append-only and outlives what it points at.
    Column("tenant_id", String(200), nullable=False),
    Column("user_id", String(160), nullable=False),
    Column(
        "conversation_id",
        Integer,
        ForeignKey("conversations.id", ondelete="SET NULL"),
        nullable=True,
    ),
    Column("message_id", Integer, ForeignKey("messages.id", ondelete="SET NULL"), nullable=True),
    Column("kind", String(16), nullable=False),
    Column("provider", String(64), nullable=False),
    Column("model", String(200), nullable=False),
    Column("prompt_tokens", Integer, nullable=False, server_default=text("0")),
    Column("completion_tokens", Integer, nullable=False, server_default=text("0")),
    Column("cost", BigInteger, nullable=True),  # nano-USD; NULL when the price is unknown
    Column("created_at", UTCDateTime(), nullable=False),
    CheckConstraint(f"kind IN ({_in(USAGE_KINDS)})", name="kind"),
)

Index(
    "ix_usage_ledger_tenant_user_created",
    usage_ledger.c.tenant_id,
    usage_ledger.c.user_id,
    usage_ledger.c.created_at,
)

# Which conversation a platform message belongs to, so that a reply to one of the bot's messages
# (Discord) or a click on its buttons finds its conversation without re-reading the channel.
platform_messages = Table(
    "platform_messages",
    metadata,
    Column("platform", String(32), primary_key=True),
    Column("tenant_id", String(200), primary_key=True),
    Column("message_id", String(160), primary_key=True),
    Column("channel_id", String(160), nullable=False),
    Column(
        "conversation_id",
        Integer,
        ForeignKey("conversations.id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("turn_id", Integer, ForeignKey("messages.id", ondelete="SET NULL"), nullable=True),
    Column("created_at", UTCDateTime(), nullable=False),
)

# Platform events already handled (Slack retries unacknowledged events; replicas share this).
processed_events = Table(
    "processed_events",
    metadata,
    Column("platform", String(32), primary_key=True),
    Column("event_id", String(200), primary_key=True),
    Column("created_at", UTCDateTime(), nullable=False),
)
Index("ix_processed_events_created", processed_events.c.created_at)

# Migration 0013: turns admitted under a messages-per-minute limit (UsageStore.admit_turn).
chat_admissions = Table(
    "chat_admissions",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("tenant_id", String(200), nullable=False),
    Column("user_id", String(160), nullable=False),
    Column("admitted_at", UTCDateTime(), nullable=False),
)
Index(
    "ix_chat_admissions_user",
    chat_admissions.c.tenant_id,
    chat_admissions.c.user_id,
    chat_admissions.c.admitted_at,
)

# Migration 0012: the processes sharing one rate budget (bot/store/shares_repo.py).
rate_shares = Table(
    "rate_shares",
    metadata,
    Column("budget", String(64), primary_key=True),
    Column("member", String(64), primary_key=True),
    Column("lease_until", UTCDateTime(), nullable=False),
)

# Migration 0015: the organization each workspace belongs to (org-wide installs; orgs_repo.py).
workspace_orgs = Table(
    "workspace_orgs",
    metadata,
    Column("platform", String(32), primary_key=True),
    Column("workspace", String(160), primary_key=True),
    Column("org", String(160), nullable=False),
    Column("seen_at", UTCDateTime(), nullable=False),
)
Index("ix_workspace_orgs_org", workspace_orgs.c.platform, workspace_orgs.c.org)

# -- images (migration 0003) -------------------------------------------------------------------

IMAGE_JOB_STATUSES = (
    "quoted",  # priced and offered; nothing spent
    "generating",  # claimed by the requester's click; a provider call may be running
    "succeeded",
    "failed",  # every provider failed before accepting the work: nothing charged
    "refused",  # the provider refused the prompt (content policy)
    "unknown",  # a provider may have accepted it and then we lost it: never retried
    "cancelled",
    "expired",
    "superseded",  # a costlier fallback was quoted instead, awaiting a new confirmation
)
BREAKER_STATES = ("CLOSED", "OPEN", "HALF_OPEN")

# One row per quote; confirming it turns the same row into the job record.
image_jobs = Table(
    "image_jobs",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("tenant_id", String(200), nullable=False),  # "<platform>:<tenant>", not a foreign key
    Column("platform", String(32), nullable=False),
    Column("channel_id", String(160), nullable=False),
    Column("thread_id", String(160), nullable=False, server_default=""),
    Column("user_id", String(160), nullable=False),
    Column("prompt", Text, nullable=False),
    Column("options", Text, nullable=False, server_default="{}"),  # JSON: negative, seed, steps
    Column("tier", String(16), nullable=False),
    Column("size", String(16), nullable=False),
    Column("entry", String(100), nullable=False),  # the catalog entry quoted first
    Column("provider", String(64), nullable=False),
    Column("model", String(200), nullable=False),
    Column("estimate", BigInteger, nullable=False),  # nano-USD
    Column("alternatives", Text, nullable=False, server_default="[]"),  # JSON list
    Column("status", String(16), nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("expires_at", UTCDateTime(), nullable=False),
    Column("claimed_at", UTCDateTime(), nullable=True),
    Column("lease_until", UTCDateTime(), nullable=True),  # a `generating` row past it is dead
    Column("confirmed_entry", String(100), nullable=True),
    Column("confirmed_estimate", BigInteger, nullable=True),  # nano-USD, the price clicked
    Column("used_provider", String(64), nullable=True),
    Column("used_model", String(200), nullable=True),
    Column("fallback_from", String(64), nullable=True),  # provider of the confirmed entry
    Column("cost", BigInteger, nullable=True),  # nano-USD actually spent (or presumed)
    Column("duration_ms", Integer, nullable=True),
    Column("detail", Text, nullable=True),  # why it failed / was refused (safe to show)
    Column("superseded_by", String(32), nullable=True),
    Column("finished_at", UTCDateTime(), nullable=True),
    CheckConstraint(f"status IN ({_in(IMAGE_JOB_STATUSES)})", name="status"),
)
Index(
    "ix_image_jobs_tenant_user_claimed",
    image_jobs.c.tenant_id,
    image_jobs.c.user_id,
    image_jobs.c.claimed_at,
)
Index("ix_image_jobs_tenant_claimed", image_jobs.c.tenant_id, image_jobs.c.claimed_at)
Index("ix_image_jobs_status", image_jobs.c.status)

# Circuit-breaker state shared by every replica (bot/resilience/shared_breaker.py).
breakers = Table(
    "breakers",
    metadata,
    Column("name", String(100), primary_key=True),
    Column("state", String(16), nullable=False),
    Column("failures", Text, nullable=False, server_default="[]"),  # JSON epoch seconds
    Column("open_until", UTCDateTime(), nullable=True),
    Column("probe_until", UTCDateTime(), nullable=True),  # lease of the one half-open probe
    Column("probe_successes", Integer, nullable=False, server_default=text("0")),
    Column("last_error", Text, nullable=True),
    Column("updated_at", UTCDateTime(), nullable=False),
    CheckConstraint(f"state IN ({_in(BREAKER_STATES)})", name="state"),
)

# -- conversations, personas and limits (migration 0004) ---------------------------------------

# A persona (agent): a named system prompt and model parameters, defined per tenant by admins.
personas = Table(
    "personas",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("tenant_id", String(200), ForeignKey("tenants.id", ondelete="CASCADE"), nullable=False),
    Column("name", String(32), nullable=False),  # lower case, see bot/engine/personas.py
    Column("system_prompt", Text, nullable=False),
    Column("model", String(200), nullable=True),
    Column("temperature", Float, nullable=True),
    Column("top_p", Float, nullable=True),
    Column("max_tokens", Integer, nullable=True),
    Column("tools", Text, nullable=False, server_default="[]"),  # JSON list of tool names
    Column("show_reasoning", String(16), nullable=True),  # off | summary; None: the setting's
    Column("created_by", String(160), nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("updated_at", UTCDateTime(), nullable=False),
    UniqueConstraint("tenant_id", "name"),
)

# Per-channel settings; today only the default persona of new conversations there.
channel_settings = Table(
    "channel_settings",
    metadata,
    Column(
        "tenant_id", String(200), ForeignKey("tenants.id", ondelete="CASCADE"), primary_key=True
    ),
    Column("channel_id", String(160), primary_key=True),
    Column("persona", String(32), nullable=True),
    Column("updated_at", UTCDateTime(), nullable=False),
)

Index(
    "ix_messages_user_created",
    messages.c.user_id,
    messages.c.created_at,
)
