"""`/search`: SQLite (FTS5), then PostgreSQL (GIN, tsvector), each with 1,000,000 messages.

Target (issue 17): a word from a month of a user's history found in under 50 ms p99 at 1,000,000
messages. The world: 10 tenants of 100 users, each user 20 conversations over a year (~1,000 of
their messages and answers), text drawn from a Zipf vocabulary of 30,000 words (the most common
ones in nearly every message, most of the rest rare), messages of 8 to 120 words. Queries, each
through the Store (`SearchStore.search`, 10 hits with snippets): a word picked from one of the
user's messages of the last month (so, like real queries, mostly common words), a frequent word
(top 20), a rare one, and two words. Seeded with bulk inserts before the search migration, which
then builds the index, as upgrading a deployed database would. PostgreSQL is a throwaway server on
127.0.0.1 (tests/pg.py); without its binaries or asyncpg that part is skipped, not failed.
"""

from __future__ import annotations

import asyncio
import itertools
import random
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import insert, text

from bench.common import median, percentile, row, verdict
from bench.persist import on_postgres
from bot.store import SearchStore, Store, migrate
from bot.store.engine import create_engine
from bot.store.search_repo import terms
from bot.store.tables import conversations, messages, tenants

TENANTS, USERS_PER_TENANT, CONVERSATIONS_PER_USER = 10, 100, 20
TOTAL_MESSAGES = 1_000_000
VOCABULARY = 30_000
BODIES = 40_000
SAMPLES = 500
BATCH = 50_000
TARGET_MS = 50.0
BEFORE_SEARCH = "0008"
END = datetime(2026, 12, 1, tzinfo=UTC)
YEAR = timedelta(days=365)
COMMON = ("the", "to", "and", "a", "of", "is", "it", "you", "in", "that", "for", "on", "with",
          "this", "my", "can", "how", "what", "do", "be")  # fmt: skip
COLUMNS = ("conversation_id", "role", "content", "status", "user_id", "created_at", "updated_at")


def vocabulary(rng: random.Random) -> list[str]:
    syllables = [a + b for a in "bcdfghklmnprstvz" for b in ("a", "e", "i", "o", "u", "ai", "ou")]
    words: dict[str, None] = dict.fromkeys(COMMON)
    while len(words) < VOCABULARY:
        words["".join(rng.choices(syllables, k=rng.randint(2, 4)))] = None
    return list(words)


def bodies(rng: random.Random, words: list[str]) -> list[str]:
    weights = list(itertools.accumulate(1 / (rank + 1) ** 1.07 for rank in range(len(words))))
    return [
        " ".join(rng.choices(words, cum_weights=weights, k=rng.randint(8, 120))) + "."
        for _ in range(BODIES)
    ]


class World:
    """Who owns what: user u of tenant t is `u{t}_{u}`; conversations are numbered from 1."""

    def __init__(self) -> None:
        self.rng = random.Random(17)
        self.words = vocabulary(self.rng)
        self.bodies = bodies(self.rng, self.words)
        self.users = [(t, u) for t in range(TENANTS) for u in range(USERS_PER_TENANT)]
        self.owner = {
            n + 1: self.users[n // CONVERSATIONS_PER_USER]
            for n in range(len(self.users) * CONVERSATIONS_PER_USER)
        }
        self.per_conversation = TOTAL_MESSAGES // len(self.owner)
        self.recent: dict[tuple[int, int], list[int]] = {}
        """A user's last month: the bodies of their messages."""

    def user_id(self, user: tuple[int, int]) -> str:
        return f"u{user[0]}_{user[1]}"

    def tenant_id(self, tenant: int) -> str:
        return f"discord:t{tenant}"


async def seed(url: str, world: World) -> None:
    engine = create_engine(url)
    async with engine.begin() as conn:
        await conn.run_sync(migrate.upgrade, BEFORE_SEARCH)
        await conn.execute(
            insert(tenants),
            [
                {"id": world.tenant_id(t), "platform": "discord", "external_id": f"t{t}",
                 "created_at": END - YEAR}
                for t in range(TENANTS)
            ],
        )  # fmt: skip
        await conn.execute(
            insert(conversations),
            [
                {
                    "id": n, "platform": "discord", "tenant_id": world.tenant_id(t),
                    "channel_id": f"c{n % 50}", "thread_id": f"th{n}",
                    "user_id": world.user_id((t, u)), "title": f"conversation {n}",
                    "message_count": world.per_conversation, "last_message_at": END,
                    "archived": False, "created_at": END - YEAR, "updated_at": END,
                }
                for n, (t, u) in world.owner.items()
            ],
        )  # fmt: skip
    rng = random.Random(23)
    step = YEAR / world.per_conversation
    batch: list[tuple[object, ...]] = []
    for n, user in world.owner.items():
        for i in range(world.per_conversation):
            when = END - YEAR + step * i + timedelta(seconds=n)
            body = rng.randrange(BODIES)
            if when > END - timedelta(days=30):
                world.recent.setdefault(user, []).append(body)
            role = "user" if i % 2 == 0 else "assistant"
            uid = world.user_id(user)
            batch.append((n, role, world.bodies[body], "complete", uid, when, when))
        if len(batch) >= BATCH or n == len(world.owner):
            await _insert(engine, batch)
            batch = []
    started = time.perf_counter()
    async with engine.begin() as conn:
        await conn.run_sync(migrate.upgrade)
    print(f"  the search migration indexed them in {time.perf_counter() - started:.1f} s")
    async with engine.connect() as conn:
        if engine.dialect.name == "postgresql":
            await conn.execution_options(isolation_level="AUTOCOMMIT")
            await conn.execute(text("VACUUM (ANALYZE)"))
        else:
            await conn.exec_driver_sql("ANALYZE")
            await conn.commit()
    await engine.dispose()


async def _insert(engine: object, batch: list[tuple[object, ...]]) -> None:
    async with engine.begin() as conn:  # type: ignore[attr-defined]
        if conn.dialect.name == "postgresql":
            raw = await conn.get_raw_connection()
            await raw.driver_connection.copy_records_to_table(
                messages.name, records=batch, columns=COLUMNS
            )
        else:
            rows = [dict(zip(COLUMNS, r, strict=True)) for r in batch]
            await conn.execute(insert(messages), rows)


def queries(world: World, kind: str, rng: random.Random) -> list[tuple[tuple[int, int], str]]:
    picked = []
    for _ in range(SAMPLES):
        user = rng.choice(world.users)
        body = world.bodies[rng.choice(world.recent[user])].rstrip(".").split()
        if kind == "a word from the last month":
            words = rng.choice(body)
        elif kind == "a frequent word (top 20)":
            words = rng.choice([w for w in COMMON[:20] if w in body] or list(COMMON[:3]))
        elif kind == "a rare word":
            words = max(body, key=world.words.index)
        else:
            words = " ".join(rng.sample(body, 2))
        picked.append((user, words))
    return picked


KINDS = ("a word from the last month", "a frequent word (top 20)", "a rare word", "two words")


async def measure(url: str, world: World) -> bool:
    store = await Store.open(url, migrate=False)
    search = SearchStore(store)
    rng = random.Random(29)
    ok = True
    try:
        for kind in KINDS:
            samples, found = [], 0
            for user, words in queries(world, kind, rng):
                started = time.perf_counter()
                hits = await search.search(
                    tenant_id=world.tenant_id(user[0]), user_id=world.user_id(user),
                    words=terms(words), limit=10,
                )  # fmt: skip
                samples.append((time.perf_counter() - started) * 1000)
                found += bool(hits)
            p99 = percentile(samples, 99)
            ok &= p99 < TARGET_MS and found == len(samples)
            row(
                f"{kind}: p50 / p99 ms (found {found}/{len(samples)})",
                f"{median(samples):.2f} / {p99:.2f}",
                f"p99 < {TARGET_MS:g} ms",
                verdict(p99 < TARGET_MS and found == len(samples)),
            )
    finally:
        await store.close()
    return ok


async def run(url: str) -> bool:
    started = time.perf_counter()
    world = World()
    await seed(url, world)
    print(f"  seeding took {time.perf_counter() - started:.1f} s", flush=True)
    return await measure(url, world)


async def sqlite() -> bool:
    print(f"Search: SQLite FTS5, {TOTAL_MESSAGES:,} messages, {TENANTS * USERS_PER_TENANT:,} users")
    with tempfile.TemporaryDirectory() as tmp:
        return await run(f"sqlite+aiosqlite:///{Path(tmp) / 'bench.db'}")


async def postgres() -> bool:
    print(f"Search: PostgreSQL full text, {TOTAL_MESSAGES:,} messages")
    return await on_postgres(run)


async def main() -> bool:
    ok = await sqlite()
    ok &= await postgres()
    return ok


if __name__ == "__main__":
    sys.exit(0 if asyncio.run(main()) else 1)
