"""Persistence: `Store` (the one place that runs SQL) and the records it returns."""

from bot.store.breakers_repo import BreakerStore
from bot.store.conversations_repo import ConversationStore
from bot.store.convert import from_nano, tenant_id_for, title_from_text, to_nano
from bot.store.failures import STORE_BUSY, StoreBusy
from bot.store.images_repo import ImageStore
from bot.store.personas_repo import DuplicatePersona, PersonaFields, PersonaStore
from bot.store.records import (
    BreakerRecord,
    ClaimResult,
    Conversation,
    ImageAlternative,
    ImageJob,
    ImageJobStatus,
    ImageUsage,
    InterruptedTurn,
    MessageRole,
    MessageStatus,
    Persona,
    StoredMessage,
    TurnProgress,
    TurnResult,
    UsageEntry,
    UsageKind,
    UsageLine,
    UsageTotals,
    UserSpend,
)
from bot.store.repo import STORE_FAILING, NotFoundError, Store, StoreError, StoreUnavailable
from bot.store.search_repo import SearchHit, SearchStore
from bot.store.turns_repo import TurnStore
from bot.store.usage_repo import UsageStore

__all__ = [
    "STORE_BUSY",
    "STORE_FAILING",
    "BreakerRecord",
    "BreakerStore",
    "ClaimResult",
    "Conversation",
    "ConversationStore",
    "DuplicatePersona",
    "ImageAlternative",
    "ImageJob",
    "ImageJobStatus",
    "ImageStore",
    "ImageUsage",
    "InterruptedTurn",
    "MessageRole",
    "MessageStatus",
    "NotFoundError",
    "Persona",
    "PersonaFields",
    "PersonaStore",
    "SearchHit",
    "SearchStore",
    "Store",
    "StoreBusy",
    "StoreError",
    "StoreUnavailable",
    "StoredMessage",
    "TurnProgress",
    "TurnResult",
    "TurnStore",
    "UsageEntry",
    "UsageKind",
    "UsageLine",
    "UsageStore",
    "UsageTotals",
    "UserSpend",
    "from_nano",
    "tenant_id_for",
    "title_from_text",
    "to_nano",
]
