"""Persistence: SQLite, then PostgreSQL, each with 1,000,000 messages across 10,000 conversations.

Targets (issue 7): append a turn p99 < 5 ms; load a 200-turn history p99 < 10 ms; list a user's
conversations p99 < 50 ms. Seeding uses bulk inserts on the real tables (COPY for the messages on
PostgreSQL); every measured call goes through the Store's public methods, as the engine makes them.
PostgreSQL is a throwaway server on 127.0.0.1 (tests/pg.py) with durable commits (PG_SETTINGS);
without PostgreSQL's binaries or asyncpg that part is skipped, not failed.
"""

from __future__ import annotations

import asyncio
import random
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import insert, text, update
from sqlalchemy.ext.asyncio import AsyncEngine

from bench.common import median, percentile, row, verdict
from bot.catalog import Catalog
from bot.engine.keeper import TurnKeeper
from bot.ports import MessageRef
from bot.store import Store, TurnProgress, migrate
from bot.store.engine import create_engine
from bot.store.tables import conversations, messages, tenants
from tests.pg import PgServer, PgStartError, PgUnavailable

CONVERSATIONS = 10_000
USERS = 100  # each owns 100 conversations
LONG = 100  # conversations with 400 messages, for the 200-turn history
LONG_MESSAGES = 400
TOTAL_MESSAGES = 1_000_000
SAMPLES = 2_000
TENANT = "discord:bench"
BATCH = 50_000
SIZES = f"{TOTAL_MESSAGES:,} messages, {CONVERSATIONS:,} conversations"
MESSAGE_COLUMNS = (
    "conversation_id",
    "role",
    "content",
    "status",
    "user_id",
    "created_at",
    "updated_at",
)

PG_SETTINGS = {
    # Durability as PostgreSQL ships it: fsync=on, synchronous_commit=on, full_page_writes=on
    # (defaults, left alone). Only memory and checkpoint spacing are raised, so the ~0.5 GB bulk
    # load neither thrashes 128 MB of buffers nor forces checkpoints mid-measurement.
    "shared_buffers": "256MB",
    "max_wal_size": "4GB",
}


BULK_REVISION = "0004"
"""The schema the bulk load writes into: before the trigger that counts each message (0005), so
the load sets the counters itself, as a restored dump would, and then migrates to head."""


async def seed(url: str) -> list[int]:
    engine = create_engine(url)
    async with engine.begin() as conn:
        await conn.run_sync(migrate.upgrade, BULK_REVISION)
    start = datetime(2026, 1, 1, tzinfo=UTC)
    rest, extra = divmod(TOTAL_MESSAGES - LONG * LONG_MESSAGES, CONVERSATIONS - LONG)
    sizes = {
        i + 1: LONG_MESSAGES if i < LONG else rest + (1 if i - LONG < extra else 0)
        for i in range(CONVERSATIONS)
    }
    async with engine.begin() as conn:
        await conn.execute(
            insert(tenants),
            [{"id": TENANT, "platform": "discord", "external_id": "bench", "created_at": start}],
        )
        await conn.execute(
            insert(conversations),
            [
                {
                    "id": i + 1,
                    "platform": "discord",
                    "tenant_id": TENANT,
                    "channel_id": f"c{i % 500}",
                    "thread_id": f"t{i}",
                    "user_id": f"u{i % USERS}",
                    "title": f"conversation {i}",
                    "message_count": sizes[i + 1],
                    "last_message_at": start + timedelta(minutes=i),
                    "archived": False,
                    "created_at": start,
                    "updated_at": start,
                }
                for i in range(CONVERSATIONS)
            ],
        )
    body = "lorem ipsum dolor sit amet " * 12  # ~320 characters a message
    batch: list[tuple[object, ...]] = []
    inserted = 0
    for conversation in range(1, CONVERSATIONS + 1):
        for n in range(sizes[conversation]):
            role = "user" if n % 2 == 0 else "assistant"
            user = f"u{conversation % USERS}" if role == "user" else None
            batch.append((conversation, role, body, "complete", user, start, start))
        if len(batch) >= BATCH or conversation == CONVERSATIONS:
            await _insert_messages(engine, batch)
            inserted += len(batch)
            batch = []
    async with engine.begin() as conn:
        await conn.run_sync(migrate.upgrade)
    await _analyze(engine)
    async with engine.begin() as conn:
        await conn.execute(update(tenants).values(name="bench"))
    await engine.dispose()
    print(f"  seeded {inserted:,} messages in {CONVERSATIONS:,} conversations", flush=True)
    return list(range(1, LONG + 1))


async def _insert_messages(engine: AsyncEngine, batch: list[tuple[object, ...]]) -> None:
    async with engine.begin() as conn:
        if engine.dialect.name == "postgresql":  # COPY: seeding ~20 s instead of ~47 s
            raw = await conn.get_raw_connection()
            await raw.driver_connection.copy_records_to_table(  # type: ignore[union-attr]
                messages.name, records=batch, columns=MESSAGE_COLUMNS
            )
        else:
            await conn.execute(
                insert(messages), [dict(zip(MESSAGE_COLUMNS, r, strict=True)) for r in batch]
            )


async def _analyze(engine: AsyncEngine) -> None:
    """Keep the planner's view honest after a bulk load.

    PostgreSQL also gets VACUUM: it sets the visibility map and hint bits now, instead of the first
    reads (or autovacuum, woken by a million inserts) doing it in the middle of the measurement.
    """
    if engine.dialect.name == "postgresql":
        async with engine.connect() as conn:
            await conn.execution_options(isolation_level="AUTOCOMMIT")
            await conn.execute(
                text("SELECT setval(pg_get_serial_sequence('conversations', 'id'), :n)"),
                {"n": CONVERSATIONS},
            )
            await conn.execute(text("VACUUM (ANALYZE)"))
    else:
        async with engine.begin() as conn:
            await conn.exec_driver_sql("ANALYZE")


async def measure(url: str, long_ids: list[int]) -> bool:
    store = await Store.open(url, migrate=False)
    rng = random.Random(7)
    append, history, listing = [], [], []
    try:
        for _ in range(SAMPLES):
            conversation = rng.randint(1, CONVERSATIONS)
            started = time.perf_counter()
            await store.add_message(conversation, "user", "a new turn", user_id="u1")
            append.append((time.perf_counter() - started) * 1000)
        for _ in range(SAMPLES):
            started = time.perf_counter()
            turns = await store.history(rng.choice(long_ids), limit=200)
            history.append((time.perf_counter() - started) * 1000)
            assert len(turns) == 200
        for _ in range(SAMPLES):
            started = time.perf_counter()
            found = await store.list_conversations(
                platform="discord", tenant_id=TENANT, user_id=f"u{rng.randrange(USERS)}", limit=20
            )
            listing.append((time.perf_counter() - started) * 1000)
            assert len(found) == 20
    finally:
        await store.close()
    ok = True
    for name, samples, target in (
        ("append a turn", append, 5.0),
        ("load a 200-turn history", history, 10.0),
        ("list a user's conversations (20 newest)", listing, 50.0),
    ):
        p99 = percentile(samples, 99)
        ok &= p99 < target
        row(
            f"{name}: p50 / p99 ms",
            f"{median(samples):.2f} / {p99:.2f}",
            f"p99 < {target:g} ms",
            verdict(p99 < target),
        )
    return ok


RUNNING = 1_000
"""Turns streaming at once while appends are measured again (issue 13's heartbeat)."""
BEATS = 6


async def measure_heartbeat(url: str) -> bool:
    """Appends while 1,000 running turns are leased and saved every 2 s by the real TurnKeeper:
    each beat renews every lease and rewrites each turn's growing text and refs."""
    store = await Store.open(url, migrate=False)
    keeper = TurnKeeper(store, Catalog.load())
    beats: list[float] = []
    append: list[float] = []
    refs = (MessageRef("1760000000.000100", "C1"), MessageRef("1760000000.000200", "C1"))
    began = time.perf_counter()

    def progress_of(turn_id: int) -> Callable[[], TurnProgress]:
        def progress() -> TurnProgress:  # 50 tokens a second, ~4 characters each
            text = "lorem " * int((time.perf_counter() - began) * 35)
            return TurnProgress(turn_id, text, refs, "workers-ai", "llama-3.1-8b")

        return progress

    beat = keeper.beat

    async def timed_beat() -> None:
        started = time.perf_counter()
        await beat()
        beats.append((time.perf_counter() - started) * 1000)

    keeper.beat = timed_beat  # type: ignore[method-assign]
    try:
        for c in range(1, RUNNING + 1):
            turn = await store.add_message(
                c, "assistant", "", status="streaming", owner=keeper.owner, lease=keeper.lease
            )
            keeper.track(turn.id, progress_of(turn.id))
        rng = random.Random(11)
        while len(beats) < BEATS:
            conversation = rng.randint(RUNNING + 1, CONVERSATIONS)
            started = time.perf_counter()
            await store.add_message(conversation, "user", "a new turn", user_id="u1")
            append.append((time.perf_counter() - started) * 1000)
            await asyncio.sleep(0.002)
    finally:
        await keeper.close()
        await store.close()
    p99, worst = percentile(append, 99), max(append)
    row(
        f"heartbeat of {RUNNING:,} running turns: p50 / max ms",
        f"{median(beats):.1f} / {max(beats):.1f}",
        "(measured)",
        "",
    )
    row(
        f"append a turn meanwhile ({len(append):,} appends): p50 / p99 / max ms",
        f"{median(append):.2f} / {p99:.2f} / {worst:.1f}",
        "p99 < 5 ms",
        verdict(p99 < 5.0),
    )
    return p99 < 5.0


async def run(url: str) -> bool:
    started = time.perf_counter()
    long_ids = await seed(url)
    print(f"  seeding took {time.perf_counter() - started:.1f} s", flush=True)
    ok = await measure(url, long_ids)
    return await measure_heartbeat(url) and ok


async def sqlite() -> bool:
    print("Persistence: SQLite (WAL, synchronous=NORMAL), " + SIZES)
    with tempfile.TemporaryDirectory() as tmp:
        return await run(f"sqlite+aiosqlite:///{Path(tmp) / 'bench.db'}")


async def postgres() -> bool:
    settings = ", ".join(f"{k}={v}" for k, v in PG_SETTINGS.items())
    print(
        "Persistence: PostgreSQL (asyncpg; fsync, synchronous_commit, full_page_writes on;"
        f" {settings}), {SIZES}"
    )
    return await on_postgres(run)


async def on_postgres(run: Callable[[str], Awaitable[bool]]) -> bool:
    """`run(url)` on a throwaway PostgreSQL (PG_SETTINGS) on 127.0.0.1; without asyncpg or
    PostgreSQL's binaries, skipped (True), not failed."""
    try:
        import asyncpg  # noqa: F401  # the postgres extra
    except ImportError:
        print("  skipped: asyncpg (the postgres extra) is not installed", flush=True)
        return True
    started = time.perf_counter()
    server = PgServer(settings=PG_SETTINGS)
    # Blocking calls on purpose: nothing else runs yet, and a Ctrl-C here still reaches stop().
    try:
        server.start()
    except PgUnavailable as exc:
        print(f"  skipped: {exc}", flush=True)
        return True
    except PgStartError as exc:
        print(f"  MISSED: {exc}", flush=True)
        return False
    try:
        server.create_database("bench")
        print(
            f"  server: PostgreSQL {server.bindir.parent.name if server.bindir else '?'} on"
            f" 127.0.0.1:{server.port}, up in {time.perf_counter() - started:.1f} s",
            flush=True,
        )
        return await run(server.url("bench"))
    finally:
        server.stop()
        print(f"  PostgreSQL part took {time.perf_counter() - started:.1f} s", flush=True)


async def main() -> bool:
    ok = await sqlite()
    ok &= await postgres()
    return ok


if __name__ == "__main__":
    sys.exit(0 if asyncio.run(main()) else 1)
