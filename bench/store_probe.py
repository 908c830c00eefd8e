"""`python -m bench.store_probe <database url>`: the store's latency as an engine sees it, sampled
beside a running load (bench/replicas.py).

Opens the Store on the database (which the bots have migrated), gives itself a conversation of
200 turns, prints `ready`, then every 20 ms appends a turn to one conversation of its own and
reads the 200-turn history, timing each through the Store's public methods. On `stop` (stdin)
it prints the latencies as one JSON line (seconds, by operation) and exits.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time

from bot.domain import ConversationKey
from bot.store import Store

EVERY = 0.02
HISTORY = 200


async def main(url: str) -> None:
    store = await Store.open(url, migrate=False)
    try:
        long = await store.ensure_conversation(
            ConversationKey("probe", "bench", "history", "long"), "probe", "history"
        )
        for i in range(HISTORY):
            await store.add_message(long.id, "user" if i % 2 == 0 else "assistant", f"turn {i}",
                                    user_id="probe")  # fmt: skip
        appends = await store.ensure_conversation(
            ConversationKey("probe", "bench", "appends", "a"), "probe", "appends"
        )
        samples: dict[str, list[float]] = {"append": [], "history": []}
        loop = asyncio.get_running_loop()
        reader = asyncio.StreamReader()
        await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
        print("ready", flush=True)
        stop = asyncio.ensure_future(reader.readline())
        while not stop.done():
            started = time.perf_counter()
            await store.add_message(appends.id, "user", "a new turn", user_id="probe")
            samples["append"].append(time.perf_counter() - started)
            started = time.perf_counter()
            turns = await store.history(long.id, limit=HISTORY)
            samples["history"].append(time.perf_counter() - started)
            assert len(turns) == HISTORY
            await asyncio.wait({stop}, timeout=EVERY)
        print(json.dumps(samples), flush=True)
    finally:
        await store.close()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1]))
