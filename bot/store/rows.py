"""Rows to records and records to rows: what every repository of the store shares."""

from __future__ import annotations

import dataclasses
import operator
from datetime import datetime
from typing import Any

from sqlalchemy import Row, Select, insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.sql.dml import Insert

from bot.domain import ConversationKey
from bot.store.convert import from_nano, tenant_id_for, to_nano
from bot.store.records import Conversation, StoredMessage, UsageEntry
from bot.store.tables import conversations, messages, usage_ledger


def usage_insert(entry: UsageEntry, now: datetime) -> Insert:
    """The INSERT of one usage-ledger line (money as nano-USD)."""
    return insert(usage_ledger).values(
        tenant_id=entry.tenant_id,
        user_id=entry.user_id,
        conversation_id=entry.conversation_id,
        message_id=entry.message_id,
        kind=entry.kind,
        provider=entry.provider,
        model=entry.model,
        prompt_tokens=entry.prompt_tokens,
        completion_tokens=entry.completion_tokens,
        cost=None if entry.cost is None else to_nano(entry.cost),
        created_at=now,
    )


def select_conversation(key: ConversationKey) -> Select[Any]:
    c = conversations.c
    return select(conversations).where(
        c.platform == key.platform,
        c.tenant_id == tenant_id_for(key),
        c.channel_id == key.channel,
        c.thread_id == key.thread,
    )


def conversation_of(row: Row[Any]) -> Conversation:
    return Conversation(
        id=row.id,
        platform=row.platform,
        tenant_id=row.tenant_id,
        channel_id=row.channel_id,
        thread_id=row.thread_id,
        user_id=row.user_id,
        title=row.title,
        model=row.model,
        persona=row.persona,
        message_count=row.message_count,
        last_message_at=row.last_message_at,
        archived=bool(row.archived),
        created_at=row.created_at,
        context_start_id=row.context_start_id,
    )


# Rows of `messages` come back in table-column order (select(messages), RETURNING *messages.c);
# reading them by position is about four times cheaper than by attribute name, which matters when a
# history of 200 turns is loaded for every reply (bench/persist.py).
_MESSAGE_COLUMNS = [column.name for column in messages.columns]
_message_values = operator.itemgetter(
    *(_MESSAGE_COLUMNS.index(field.name) for field in dataclasses.fields(StoredMessage))
)
_COST = [field.name for field in dataclasses.fields(StoredMessage)].index("cost")


def foreign_key_failed(exc: IntegrityError) -> bool:
    """SQLite's "FOREIGN KEY constraint failed", or PostgreSQL's foreign_key_violation (23503)."""
    orig = exc.orig
    return "FOREIGN KEY" in str(orig) or "ForeignKeyViolation" in type(orig).__name__


def message_of(row: Row[Any]) -> StoredMessage:
    values = list(_message_values(row))
    if values[_COST] is not None:
        values[_COST] = from_nano(values[_COST])
    return StoredMessage(*values)
