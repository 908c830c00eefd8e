"""Persistence: `Store` (the one place that runs SQL) and the records it returns."""

from bot.store.convert import from_nano, tenant_id_for, title_from_text, to_nano
from bot.store.records import (
    Conversation,
    MessageRole,
    MessageStatus,
    StoredMessage,
    TurnResult,
    UsageKind,
    UsageTotals,
)
from bot.store.repo import NotFoundError, Store, StoreError

__all__ = [
    "Conversation",
    "MessageRole",
    "MessageStatus",
    "NotFoundError",
    "Store",
    "StoreError",
    "StoredMessage",
    "TurnResult",
    "UsageKind",
    "UsageTotals",
    "from_nano",
    "tenant_id_for",
    "title_from_text",
    "to_nano",
]
