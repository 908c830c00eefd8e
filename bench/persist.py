"""Persistence: SQLite with 1,000,000 stored messages across 10,000 conversations.

Targets (issue 7): append a turn p99 < 5 ms; load a 200-turn history p99 < 10 ms; list a user's
conversations p99 < 50 ms. Seeding uses bulk inserts on the real tables; every measured call goes
through the Store's public methods, as the engine makes them.
"""

from __future__ import annotations

import asyncio
import random
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import insert, update

from bench.common import median, percentile, row, verdict
from bot.store import Store
from bot.store.engine import create_engine
from bot.store.tables import conversations, messages, tenants

CONVERSATIONS = 10_000
USERS = 100  # each owns 100 conversations
LONG = 100  # conversations with 400 messages, for the 200-turn history
LONG_MESSAGES = 400
TOTAL_MESSAGES = 1_000_000
SAMPLES = 2_000
TENANT = "discord:bench"


async def seed(url: str) -> list[int]:
    store = await Store.open(url)
    await store.close()
    engine = create_engine(url)
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
    text = "lorem ipsum dolor sit amet " * 12  # ~320 characters a message
    batch: list[dict[str, object]] = []
    inserted = 0
    for conversation in range(1, CONVERSATIONS + 1):
        count = sizes[conversation]
        for n in range(count):
            role = "user" if n % 2 == 0 else "assistant"
            batch.append(
                {
                    "conversation_id": conversation,
                    "role": role,
                    "content": text,
                    "status": "complete",
                    "user_id": f"u{conversation % USERS}" if role == "user" else None,
                    "created_at": start,
                    "updated_at": start,
                }
            )
        if len(batch) >= 50_000 or conversation == CONVERSATIONS:
            async with engine.begin() as conn:
                await conn.execute(insert(messages), batch)
            inserted += len(batch)
            batch = []
    async with engine.begin() as conn:  # keep the planner's view honest after a bulk load
        await conn.exec_driver_sql("ANALYZE")
        await conn.execute(update(tenants).values(name="bench"))
    await engine.dispose()
    print(f"  seeded {inserted:,} messages in {CONVERSATIONS:,} conversations", flush=True)
    return list(range(1, LONG + 1))


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


async def main(url: str | None = None) -> bool:
    print("Persistence: SQLite (WAL), 1,000,000 messages, 10,000 conversations")
    with tempfile.TemporaryDirectory() as tmp:
        url = url or f"sqlite+aiosqlite:///{Path(tmp) / 'bench.db'}"
        started = time.perf_counter()
        long_ids = await seed(url)
        print(f"  seeding took {time.perf_counter() - started:.1f} s", flush=True)
        return await measure(url, long_ids)


if __name__ == "__main__":
    sys.exit(0 if asyncio.run(main()) else 1)
