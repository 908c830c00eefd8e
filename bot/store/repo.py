"""Store: the one module that runs SQL. SQLAlchemy Core on an AsyncEngine; SQLite or PostgreSQL.

Tenant ids: everywhere in this API a `tenant_id` is platform-qualified, `"<platform>:<tenant>"`
(e.g. "discord:123456", "slack:T0123", "console:local"), as built by `tenant_id_for(key)`. It is the
primary key of `tenants` and what `Conversation.tenant_id` holds, so one Discord guild id and one
Slack team id can never collide.

Money: `Decimal` USD in the API, an integer of nano-USD in the database (`convert.to_nano` and
`from_nano`: exact, half-even at the ninth decimal). Timestamps come from the injected Clock.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import operator
import secrets
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from datetime import datetime, timedelta
from decimal import Decimal
from types import TracebackType
from typing import Any, Self

from sqlalchemy import Row, Select, Table, delete, func, insert, select, text, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import URL
from sqlalchemy.exc import (
    DBAPIError,
    IntegrityError,
    InterfaceError,
    InternalError,
    OperationalError,
    SQLAlchemyError,
)
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from sqlalchemy.sql.dml import Insert

from bot.clock import SYSTEM_CLOCK, Clock
from bot.domain import ConversationKey
from bot.errors import UserError
from bot.store import migrate as migrations
from bot.store.convert import from_nano, tenant_id_for, title_from_text, to_nano
from bot.store.engine import WRITE_OPTION, create_engine, is_sqlite_memory
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
from bot.store.tables import (
    conversations,
    messages,
    platform_messages,
    processed_events,
    tenants,
    usage_ledger,
)

log = logging.getLogger(__name__)

CHECKPOINT_INTERVAL = 1.0
"""Seconds between background WAL checkpoints of a SQLite file (see engine.SQLITE_FILE_PRAGMAS)."""
_MIGRATION_LOCK = 0x5041524C4559  # "PARLEY": one migrator at a time across PostgreSQL replicas


class StoreError(Exception):
    """Base of the Store's own errors (driver errors pass through as SQLAlchemy's)."""


class NotFoundError(StoreError, LookupError):
    """The conversation or message an update names does not exist."""


STORE_FAILING = (
    "Parley can't save anything right now (its storage is failing), so it can't do this."
    " Please try again later."
)
"""What a user is told when a write fails in the database or its disk (every platform)."""


class StoreUnavailable(StoreError, UserError):
    """A write failed in the database or under it (disk full, I/O error, connection lost);
    its message is STORE_FAILING, for users. The driver's error is its __cause__."""

    def __init__(self) -> None:
        UserError.__init__(self, STORE_FAILING, code="store_failing")


_FAILING_SQLSTATES = ("08", "53", "57P", "58")
"""PostgreSQL: connection exceptions, insufficient resources (disk full, out of memory),
operator intervention (shutdown), system errors (I/O)."""


def is_storage_failure(exc: BaseException) -> bool:
    """The database or its disk failed, rather than the statement (a constraint, a bug)."""
    if isinstance(exc, (OperationalError, InterfaceError, InternalError)):
        return True  # SQLite: "database or disk is full", "disk I/O error"; lost connections
    if isinstance(exc, DBAPIError):
        state = str(getattr(exc.orig, "sqlstate", None) or "")
        return state.startswith(_FAILING_SQLSTATES)
    return isinstance(exc, OSError)


LOG_REPEAT_EVERY = 60.0
"""Seconds between log lines about a failure that goes on (writes, WAL checkpoints)."""


class FailureLog:
    """One warning when something starts failing, then at most one per LOG_REPEAT_EVERY with a
    count, and one info line when it works again: a full disk is a few lines, not one a second."""

    def __init__(self, what: str, clock: Clock) -> None:
        self.what = what
        self._clock = clock
        self.failures = 0
        self._unlogged = 0
        self._logged_at = 0.0

    @property
    def failing(self) -> bool:
        return self.failures > 0

    def failed(self, exc: BaseException) -> None:
        now = self._clock.now()
        self.failures += 1
        self._unlogged += 1
        if self.failures == 1:
            log.warning("%s failing: %s", self.what, _reason(exc))
        elif now - self._logged_at >= LOG_REPEAT_EVERY:
            log.warning(
                "%s still failing: %d failures since the last line (%d in all): %s",
                self.what,
                self._unlogged,
                self.failures,
                _reason(exc),
            )
        else:
            return
        self._logged_at, self._unlogged = now, 0

    def worked(self) -> None:
        if self.failures:
            log.info("%s working again after %d failures", self.what, self.failures)
        self.failures = self._unlogged = 0


def _reason(exc: BaseException) -> str:
    """The error's type and the driver's short message (no statement, no parameters)."""
    orig = getattr(exc, "orig", None) or exc
    return f"{type(orig).__name__}: {str(orig).splitlines()[0][:200] if str(orig) else ''}"


class Store:
    """Conversations, messages and the usage ledger. Open with `await Store.open(url)`."""

    def __init__(self, engine: AsyncEngine, *, clock: Clock = SYSTEM_CLOCK) -> None:
        self._engine = engine
        self._clock = clock
        self._dialect = engine.dialect.name
        no_lock: AbstractAsyncContextManager[Any] = contextlib.nullcontext()
        self._write_lock: AbstractAsyncContextManager[Any] = no_lock
        self._read_lock: AbstractAsyncContextManager[Any] = no_lock
        self._checkpoints: asyncio.Task[None] | None = None
        self.writes = FailureLog("store writes", clock)
        """Whether writes fail now (the last one failed, none worked since): /readyz says so."""
        self._checkpoint_log = FailureLog("WAL checkpoint", clock)
        if self._dialect == "sqlite":
            # SQLite has one writer: queue writers here rather than in busy_timeout.
            self._write_lock = asyncio.Lock()
            if is_sqlite_memory(engine.url):
                # Every transaction shares the one connection, so none may overlap.
                self._read_lock = self._write_lock

    @classmethod
    async def open(
        cls,
        url: str | URL,
        *,
        migrate: bool = True,
        clock: Clock = SYSTEM_CLOCK,
        checkpoint_every: float | None = CHECKPOINT_INTERVAL,
    ) -> Store:
        """Connect (creating a SQLite file's directory) and, unless told not to, migrate to head.

        A SQLite file is checkpointed every `checkpoint_every` seconds in the background (None:
        only when `checkpoint` is called)."""
        store = cls(create_engine(url), clock=clock)
        if migrate:
            try:
                await store.upgrade()
            except BaseException:
                await store.close()
                raise
        file = store._dialect == "sqlite" and not is_sqlite_memory(store._engine.url)
        if file and checkpoint_every is not None:
            store._checkpoints = asyncio.create_task(store._checkpoint_every(checkpoint_every))
        return store

    async def close(self) -> None:
        if self._checkpoints is not None:
            self._checkpoints.cancel()
            await asyncio.gather(self._checkpoints, return_exceptions=True)
            self._checkpoints = None
        await self._engine.dispose()

    async def checkpoint(self) -> tuple[int, int, int]:
        """SQLite file: copy what the WAL holds into the database, waiting for no one (PASSIVE),
        off the writers' path; returns SQLite's (busy, WAL frames, frames checkpointed)."""
        async with self._engine.connect() as conn:
            conn = await conn.execution_options(isolation_level="AUTOCOMMIT")
            result = await conn.exec_driver_sql("PRAGMA wal_checkpoint(PASSIVE)")
            row: tuple[Any, ...] = tuple(result.one())
        return int(row[0]), int(row[1]), int(row[2])

    async def _checkpoint_every(self, seconds: float) -> None:
        while True:
            await asyncio.sleep(seconds)
            try:
                await self.checkpoint()
            except (SQLAlchemyError, OSError) as exc:  # retried at the next tick
                self._checkpoint_log.failed(exc)
            else:
                self._checkpoint_log.worked()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    @property
    def dialect(self) -> str:
        return self._dialect

    @asynccontextmanager
    async def _transaction(self, *, write: bool) -> AsyncIterator[AsyncConnection]:
        """One transaction. A write that fails in the database or its disk raises
        StoreUnavailable (and marks the store not ready until a write works again)."""
        if not write:
            async with self._read_lock, self._engine.connect() as conn, conn.begin():
                yield conn
            return
        try:
            async with self._write_lock, self._engine.connect() as conn:
                await conn.execution_options(**{WRITE_OPTION: True})
                async with conn.begin():
                    yield conn
        except (SQLAlchemyError, OSError) as exc:
            if not is_storage_failure(exc):
                raise
            self.writes.failed(exc)
            raise StoreUnavailable() from exc
        self.writes.worked()

    # -- schema -------------------------------------------------------------------------------

    async def upgrade(self) -> None:
        """Alembic `upgrade head`, in one transaction; a no-op when already at head."""
        async with self._transaction(write=True) as conn:
            if self._dialect == "postgresql":
                await conn.execute(
                    text("SELECT pg_advisory_xact_lock(:key)"), {"key": _MIGRATION_LOCK}
                )
            await conn.run_sync(migrations.upgrade)

    async def current_revision(self) -> str | None:
        async with self._transaction(write=False) as conn:
            return await conn.run_sync(migrations.current_revision)

    async def ping(self) -> bool:
        """Readiness: can a trivial query round-trip to the database? And, while writes have
        been failing, does a write work again (a probe row, inserted and deleted)?"""
        try:
            if self.writes.failing:
                await self._probe_write()
            else:
                async with self._transaction(write=False) as conn:
                    await conn.execute(select(1))
        except StoreUnavailable:
            return False
        except (SQLAlchemyError, OSError, TimeoutError) as exc:
            log.warning("store ping failed: %s", type(exc).__name__)
            return False
        return True

    async def _probe_write(self) -> None:
        """A write that reaches the disk and leaves nothing behind."""
        probe = {"platform": "probe", "event_id": secrets.token_hex(8)}
        async with self._transaction(write=True) as conn:
            await conn.execute(
                insert(processed_events).values(**probe, created_at=self._clock.wall())
            )
            await conn.execute(
                delete(processed_events).where(
                    processed_events.c.platform == probe["platform"],
                    processed_events.c.event_id == probe["event_id"],
                )
            )

    # -- conversations ------------------------------------------------------------------------

    def _insert_ignoring_conflicts(self, table: Table, **values: Any) -> Insert:
        if self._dialect == "postgresql":
            return pg_insert(table).values(**values).on_conflict_do_nothing()
        return sqlite_insert(table).values(**values).on_conflict_do_nothing()

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
            row = (await conn.execute(_select_conversation(key))).one()
        return conversation_of(row)

    async def link_platform_message(
        self,
        key: ConversationKey,
        message_id: str,
        conversation_id: int,
        *,
        turn_id: int | None = None,
    ) -> None:
        """Remember that a platform message (in key's tenant) belongs to a conversation."""
        async with self._transaction(write=True) as conn:
            await conn.execute(
                self._insert_ignoring_conflicts(
                    platform_messages,
                    platform=key.platform,
                    tenant_id=tenant_id_for(key),
                    message_id=message_id,
                    channel_id=key.channel,
                    conversation_id=conversation_id,
                    turn_id=turn_id,
                    created_at=self._clock.wall(),
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
            row = (await conn.execute(_select_conversation(key))).first()
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
    ) -> StoredMessage:
        """Append a message; the conversation's count and last_message_at follow in the same
        statement (trigger `trg_messages_count`, migration 0005).

        A `streaming` turn names its `owner` (the process running it) and holds a `lease` that
        the owner renews (turns_repo.TurnStore.heartbeat); `prompt_tokens` is what it is billed
        for if it is cut off before the provider says.
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
            if not _foreign_key_failed(exc):
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


def _select_conversation(key: ConversationKey) -> Select[Any]:
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


def _foreign_key_failed(exc: IntegrityError) -> bool:
    """SQLite's "FOREIGN KEY constraint failed", or PostgreSQL's foreign_key_violation (23503)."""
    orig = exc.orig
    return "FOREIGN KEY" in str(orig) or "ForeignKeyViolation" in type(orig).__name__


def message_of(row: Row[Any]) -> StoredMessage:
    values = list(_message_values(row))
    if values[_COST] is not None:
        values[_COST] = from_nano(values[_COST])
    return StoredMessage(*values)
