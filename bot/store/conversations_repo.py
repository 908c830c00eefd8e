"""Conversation queries beyond the Store's core set: the `/new` context marker, messages by id.

Part of the Store package; a `ConversationStore` wraps a `Store` and runs in its transactions.
"""

from __future__ import annotations

from sqlalchemy import func, select, update

from bot.store.convert import title_from_text
from bot.store.repo import NotFoundError, Store
from bot.store.tables import conversations, messages


class ConversationStore:
    def __init__(self, store: Store) -> None:
        self._store = store

    async def start_new_context(self, conversation_id: int) -> int | None:
        """`/new`: later history ignores every message so far; returns the marker (newest id)."""
        newest = select(func.max(messages.c.id)).where(
            messages.c.conversation_id == conversation_id
        )
        async with self._store._transaction(write=True) as conn:
            marker = (await conn.execute(newest)).scalar_one_or_none()
            result = await conn.execute(
                update(conversations)
                .where(conversations.c.id == conversation_id)
                .values(context_start_id=marker, updated_at=self._store._clock.wall())
                .returning(conversations.c.id)
            )
            if result.first() is None:
                raise NotFoundError(f"no conversation {conversation_id}")
        return None if marker is None else int(marker)

    async def title_if_untitled(self, conversation_id: int, text: str) -> None:
        """Title a conversation created before its first message (by /model or /persona use)."""
        c = conversations.c
        async with self._store._transaction(write=True) as conn:
            await conn.execute(
                update(conversations)
                .where(c.id == conversation_id, c.title == "")
                .values(title=title_from_text(text))
            )
