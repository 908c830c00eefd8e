"""Store: the one module that runs SQL. SQLAlchemy Core on an AsyncEngine; SQLite or PostgreSQL.

Tenant ids: everywhere in this API a `tenant_id` is platform-qualified, `"<platform>:<tenant>"`
(e.g. "discord:123456", "slack:T0123", "console:local"), as built by `tenant_id_for(key)`. It is the
primary key of `tenants` and what `Conversation.tenant_id` holds, so one Discord guild id and one
Slack team id can never collide.

Money: `Decimal` USD in the API, an integer of nano-USD in the database (`convert.to_nano` and
`from_nano`: exact, half-even at the ninth decimal). Timestamps come from the injected Clock.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.exc import IntegrityError

from bot.domain import ConversationKey
from bot.store.base import CHECKPOINT_INTERVAL, StoreBase
from bot.store.convert import from_nano, tenant_id_for, title_from_text, to_nano
from bot.store.failures import (
    LOG_REPEAT_EVERY,
    STORE_FAILING,
    FailureLog,
    NotFoundError,
    StoreError,
    StoreUnavailable,
    is_storage_failure,
)
from bot.store.records import (
    Conversation,
    MessageRole,
    MessageStatus,
    StoredMessage,
    TurnResult,
    UsageEntry,
    UsageKind,
    UsageTotals,
)
from bot.store.rows import (
    conversation_of,
    foreign_key_failed,
    message_of,
    select_conversation,
    usage_insert,
)
from bot.store.tables import (
    conversations,
    messages,
    platform_messages,
    processed_events,
    tenants,
    usage_ledger,
)

__all__ = [
    "CHECKPOINT_INTERVAL",
    "LOG_REPEAT_EVERY",
    "STORE_FAILING",
    "FailureLog",
    "NotFoundError",
    "Store",
    "StoreError",
    "StoreUnavailable",
    "conversation_of",
    "is_storage_failure",
    "message_of",
    "usage_insert",
]


class Store(StoreBase):
    """Conversations, messages and the usage ledger. Open with `await Store.open(url)`."""

    # -- conversations ------------------------------------------------------------------------

    async def ensure_conversation(
        self, key: ConversationKey, user_id: str, title: str
    ) -> Conversation:
        """Get the conversation at `key`, creating it (and its tenant) if missing; race-safe."""
        now = self._clock.wall()
        tenant_id = tenant_id_for(key)
        async with self._transaction(write=True) as conn:
            await conn.execute(
                self._insert_ignoring_conflicts(
                    tenants,
                    id=tenant_id,
                    platform=key.platform,
                    external_id=key.tenant,
                    created_at=now,
                )
            )
            await conn.execute(
                self._insert_ignoring_conflicts(
                    conversations,
                    platform=key.platform,
                    tenant_id=tenant_id,
                    channel_id=key.channel,
                    thread_id=key.thread,
                    user_id=user_id,
                    title=title_from_text(title),
                    message_count=0,
                    archived=False,
                    created_at=now,
                    updated_at=now,
                )
            )
            row = (await conn.execute(select_conversation(key))).one()
        return conversation_of(row)

    async def link_platform_message(
        self,
        key: ConversationKey,
        message_ids: str | Sequence[str],
        conversation_id: int,
        *,
        turn_id: int | None = None,
    ) -> None:
        """Remember that platform messages (in key's tenant) belong to a conversation: one
        transaction for a reply's every message."""
        ids = [message_ids] if isinstance(message_ids, str) else list(message_ids)
        if not ids:
            return
        now = self._clock.wall()
        async with self._transaction(write=True) as conn:
            for message_id in ids:
                await conn.execute(
                    self._insert_ignoring_conflicts(
                        platform_messages,
                        platform=key.platform,
                        tenant_id=tenant_id_for(key),
                        message_id=message_id,
                        channel_id=key.channel,
                        conversation_id=conversation_id,
                        turn_id=turn_id,
                        created_at=now,
                    )
                )

    async def conversation_for_message(
        self, platform: str, tenant: str, message_id: str
    ) -> Conversation | None:
        """The conversation a platform message was linked to, within one tenant only."""
        stmt = (
            select(conversations)
            .join(platform_messages, platform_messages.c.conversation_id == conversations.c.id)
            .where(
                platform_messages.c.platform == platform,
                platform_messages.c.tenant_id == f"{platform}:{tenant}",
                platform_messages.c.message_id == message_id,
            )
        )
        async with self._transaction(write=False) as conn:
            row = (await conn.execute(stmt)).first()
        return None if row is None else conversation_of(row)

    async def claim_event(self, platform: str, event_id: str) -> bool:
        """True the first time an event id is seen, across every replica sharing this store."""
        async with self._transaction(write=True) as conn:
            result = await conn.execute(
                self._insert_ignoring_conflicts(
                    processed_events,
                    platform=platform,
                    event_id=event_id,
                    created_at=self._clock.wall(),
                )
            )
        return bool(result.rowcount)

    async def forget_events_before(self, cutoff: datetime, *, platform: str | None = None) -> int:
        """Drop dedupe records older than `cutoff` (platforms stop retrying within minutes), of
        one platform or, by default, of all; returns how many."""
        stmt = delete(processed_events).where(processed_events.c.created_at < cutoff)
        if platform is not None:
            stmt = stmt.where(processed_events.c.platform == platform)
        async with self._transaction(write=True) as conn:
            result = await conn.execute(stmt)
        return int(result.rowcount or 0)

    async def get_conversation(self, key: ConversationKey) -> Conversation | None:
        async with self._transaction(write=False) as conn:
            row = (await conn.execute(select_conversation(key))).first()
        return None if row is None else conversation_of(row)

    async def get_conversation_by_id(self, conversation_id: int) -> Conversation | None:
        stmt = select(conversations).where(conversations.c.id == conversation_id)
        async with self._transaction(write=False) as conn:
            row = (await conn.execute(stmt)).first()
        return None if row is None else conversation_of(row)

    async def set_conversation_model(self, conversation_id: int, model: str | None) -> None:
        """Pin the conversation to `model`; None goes back to the default."""
        await self._update_conversation(conversation_id, model=model)

    async def set_archived(self, conversation_id: int, archived: bool) -> None:
        await self._update_conversation(conversation_id, archived=archived)

    async def _update_conversation(self, conversation_id: int, **values: Any) -> None:
        stmt = (
            update(conversations)
            .where(conversations.c.id == conversation_id)
            .values(**values, updated_at=self._clock.wall())
            .returning(conversations.c.id)
        )
        async with self._transaction(write=True) as conn:
            if (await conn.execute(stmt)).first() is None:
                raise NotFoundError(f"no conversation {conversation_id}")

    async def list_conversations(
        self,
        *,
        platform: str,
        tenant_id: str,
        user_id: str | None,
        limit: int = 20,
        offset: int = 0,
        include_archived: bool = False,
    ) -> list[Conversation]:
        """A user's conversations in one tenant (all users' when user_id is None), newest first."""
        c = conversations.c
        stmt = select(conversations).where(c.platform == platform, c.tenant_id == tenant_id)
        if user_id is not None:
            stmt = stmt.where(c.user_id == user_id)
        if not include_archived:
            stmt = stmt.where(c.archived.is_(False))
        stmt = (
            stmt.order_by(c.last_message_at.desc().nulls_last(), c.id.desc())
            .limit(limit)
            .offset(offset)
        )
        async with self._transaction(write=False) as conn:
            rows = (await conn.execute(stmt)).all()
        return [conversation_of(row) for row in rows]

    # -- messages -----------------------------------------------------------------------------

    async def add_message(
        self,
        conversation_id: int,
        role: MessageRole,
        content: str,
        *,
        status: MessageStatus = "complete",
        user_id: str | None = None,
        parent_id: int | None = None,
        model: str | None = None,
        provider: str | None = None,
        owner: str | None = None,
        lease: timedelta | None = None,
        prompt_tokens: int | None = None,
        attachments: str | None = None,
    ) -> StoredMessage:
        """Append a message; the conversation's count and last_message_at follow in the same
        statement (trigger `trg_messages_count`, migration 0005).

        A `streaming` turn names its `owner` (the process running it) and holds a `lease` that
        the owner renews (turns_repo.TurnStore.heartbeat); `prompt_tokens` is what it is billed
        for if it is cut off before the provider says; `attachments` what its files said.
        """
        now = self._clock.wall()
        add = (
            insert(messages)
            .values(
                conversation_id=conversation_id,
                parent_id=parent_id,
                role=role,
                content=content,
                status=status,
                user_id=user_id,
                model=model,
                provider=provider,
                prompt_tokens=prompt_tokens,
                attachments=attachments,
                owner=owner,
                lease_until=None if lease is None else now + lease,
                created_at=now,
                updated_at=now,
            )
            .returning(*messages.c)
        )
        try:
            async with self._transaction(write=True) as conn:
                row = (await conn.execute(add)).one()
        except IntegrityError as exc:
            if not foreign_key_failed(exc):
                raise  # a CHECK constraint: a bug, not a missing row
            missing = f"no conversation {conversation_id}"
            if parent_id is not None:
                missing += f" or no message {parent_id}"
            raise NotFoundError(missing) from exc
        return message_of(row)

    async def finish_message(self, message_id: int, result: TurnResult) -> StoredMessage:
        """Write an ended turn's text, status, usage, cost and timings in one UPDATE.

        A None model or provider in `result` keeps what the message already had.
        """
        m = messages.c
        stmt = (
            update(messages)
            .where(m.id == message_id)
            .values(
                content=result.content,
                status=result.status,
                finish_reason=result.finish_reason,
                model=m.model if result.model is None else result.model,
                provider=m.provider if result.provider is None else result.provider,
                prompt_tokens=result.prompt_tokens,
                completion_tokens=result.completion_tokens,
                cost=None if result.cost is None else to_nano(result.cost),
                ttft_ms=result.ttft_ms,
                duration_ms=result.duration_ms,
                tool_rounds=result.tool_rounds,
                updated_at=self._clock.wall(),
            )
            .returning(*messages.c)
        )
        async with self._transaction(write=True) as conn:
            row = (await conn.execute(stmt)).first()
        if row is None:
            raise NotFoundError(f"no message {message_id}")
        return message_of(row)

    async def get_message(self, message_id: int) -> StoredMessage | None:
        stmt = select(messages).where(messages.c.id == message_id)
        async with self._transaction(write=False) as conn:
            row = (await conn.execute(stmt)).first()
        return None if row is None else message_of(row)

    async def history(self, conversation_id: int, *, limit: int = 200) -> list[StoredMessage]:
        """The newest `limit` messages of a conversation, oldest first."""
        stmt = (
            select(messages)
            .where(messages.c.conversation_id == conversation_id)
            .order_by(messages.c.id.desc())
            .limit(limit)
        )
        async with self._transaction(write=False) as conn:
            rows = (await conn.execute(stmt)).all()
        return [message_of(row) for row in reversed(rows)]

    # -- usage --------------------------------------------------------------------------------

    async def record_usage(
        self,
        *,
        tenant_id: str,
        user_id: str,
        kind: UsageKind,
        provider: str,
        model: str,
        prompt_tokens: int,
        completion_tokens: int,
        cost: Decimal | None,
        conversation_id: int | None = None,
        message_id: int | None = None,
    ) -> None:
        """Append one line to the usage ledger. `cost` None means the price was unknown."""
        entry = UsageEntry(
            tenant_id, user_id, kind, provider, model, prompt_tokens, completion_tokens, cost,
            conversation_id, message_id,
        )  # fmt: skip
        async with self._transaction(write=True) as conn:
            await conn.execute(usage_insert(entry, self._clock.wall()))

    async def usage_totals(
        self, *, tenant_id: str, user_id: str | None, since: datetime
    ) -> UsageTotals:
        """Ledger sums for a tenant since `since`: one user's, or everyone's if user_id is None."""
        u = usage_ledger.c
        stmt = select(
            func.coalesce(func.sum(u.prompt_tokens), 0),
            func.coalesce(func.sum(u.completion_tokens), 0),
            func.coalesce(func.sum(u.cost), 0),
            func.count(),
        ).where(u.tenant_id == tenant_id, u.created_at >= since)
        if user_id is not None:
            stmt = stmt.where(u.user_id == user_id)
        async with self._transaction(write=False) as conn:
            prompt, completion, cost, count = (await conn.execute(stmt)).one()
        # PostgreSQL's SUM(bigint) is numeric: normalise every sum to int before converting.
        return UsageTotals(
            prompt_tokens=int(prompt),
            completion_tokens=int(completion),
            cost=from_nano(int(cost)),
            count=int(count),
        )
