"""Persistence: `Store` (the one place that runs SQL) and the records it returns."""

from bot.store.breakers_repo import BreakerStore
from bot.store.convert import from_nano, tenant_id_for, title_from_text, to_nano
from bot.store.images_repo import ImageStore
from bot.store.records import (
    BreakerRecord,
    ClaimResult,
    Conversation,
    ImageAlternative,
    ImageJob,
    ImageJobStatus,
    ImageUsage,
    MessageRole,
    MessageStatus,
    StoredMessage,
    TurnResult,
    UsageKind,
    UsageTotals,
)
from bot.store.repo import NotFoundError, Store, StoreError

__all__ = [
    "BreakerRecord",
    "BreakerStore",
    "ClaimResult",
    "Conversation",
    "ImageAlternative",
    "ImageJob",
    "ImageJobStatus",
    "ImageStore",
    "ImageUsage",
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
