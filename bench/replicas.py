"""`python -m bench replicas`: two `python -m bot` processes over one PostgreSQL, 500 concurrent
streams each (issue 18), against the strict Discord and Slack fakes, at 0 and 100 ms of platform
round trip.

The workload and the measures are `bench stream`'s (bench/stream.py: 400 tokens at 50 tokens/s
after 200 ms, each conversation a /chat in a channel of its own; first visible text, display lag
per token, 429s, exact final texts), run over a pair of processes instead of one:
- Discord: one bot, two shards, a process each (DISCORD_SHARD_COUNT=2, DISCORD_SHARD_IDS 0 and
  1), a server on each shard with 500 channels; the fake counts the bot's global 50 requests a
  second over both processes, which split DISCORD_GLOBAL_RATE_PER_SECOND through the database.
- Slack: one app in one workspace, two replicas behind a load balancer (the /chat requests
  alternate between them); the fake's chat.update (50/min) and chat.appendStream (100/min) are
  the workspace's, and the replicas split them through the database.
Meanwhile a probe process (bench/store_probe.py) appends a turn and reads a 200-turn history on
the same PostgreSQL every 20 ms: the p99 an engine sees while both replicas write their replies'
progress (the heartbeat of 500 streaming turns each).
"""

from __future__ import annotations

import asyncio
import json
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path

from bench.common import row, verdict
from bench.stream import (
    DISCORD_GLOBAL,
    DISCORD_PACE,
    FIRST_TOKEN,
    SLACK_APPENDS_PER_MIN,
    SLACK_UPDATES_PER_MIN,
    TOKEN_GAP,
    TOKENS,
    DiscordRig,
    SlackRig,
    remote_provider,
    report,
    run,
)
from tests.e2e.discord.conftest import BotProcess, discord_env
from tests.e2e.slack.conftest import SlackBot, launch_bot, stop_bot
from tests.fakes.discord import FakeDiscord
from tests.fakes.discord.gateway import shard_of
from tests.fakes.discord.ratelimit import Buckets, BucketSpec
from tests.fakes.discord.server import DEFAULT_BUCKETS
from tests.fakes.llm_server import LLMFake
from tests.fakes.slack import SlackFake
from tests.pg import PgServer, PgStartError, PgUnavailable

PER_PROCESS = 500
WARM_UP = 10
"""Streams per process run once, unmeasured, before the measured run: what a fresh process
allocates once (pools, caches, the first turns' code paths) is not counted per stream."""
PROCESSES = 2
POOL = 30
"""DATABASE_POOL_SIZE of each bot, as docs/operations.md advises for hundreds of replies per
process (the default, 10, is for a community's load)."""
RTTS = (0.0, 0.1)
PG_SETTINGS = {"shared_buffers": "256MB", "max_connections": "200"}
"""Durable commits as PostgreSQL ships them; room for both replicas' pools and the probe."""
PROBE_TARGETS = {"append": 0.005, "history": 0.010}
"""p99 targets of docs/benchmarks.md (Persistence): a turn's append < 5 ms, a 200-turn history
< 10 ms."""


@asynccontextmanager
async def discord_pair(llm: LLMFake, tmp: Path, url: str) -> AsyncIterator[DiscordRig]:
    channels = PER_PROCESS + WARM_UP
    async with FakeDiscord(channels=channels, global_limit=BucketSpec(DISCORD_GLOBAL, 1.0)) as fake:
        guild = fake.guild
        while shard_of(guild.id, PROCESSES) == shard_of(fake.guild.id, PROCESSES):
            guild = fake.add_guild(f"bench-{len(fake.other_guilds)}", channels=channels)
        fake.buckets = Buckets({name: BucketSpec(5, 5.0) for name in DEFAULT_BUCKETS})
        bots = []
        try:
            for shard in range(PROCESSES):
                env = discord_env(
                    fake, llm, tmp, DISCORD_GLOBAL_RATE_PER_SECOND=str(DISCORD_PACE),
                    DISCORD_SHARD_COUNT=str(PROCESSES), DISCORD_SHARD_IDS=str(shard),
                    DATABASE_URL=url, DATABASE_POOL_SIZE=str(POOL),
                )  # fmt: skip
                env["LOG_LEVEL"] = "WARNING"
                bots.append(await BotProcess(fake, env, tmp).start())
            await fake.wait_until(lambda: len(fake.gateway.shards) == PROCESSES, 30)
            await fake.wait_until(lambda: fake.commands, 30, what="commands synced")
            await asyncio.sleep(2 * 2.0)  # a renewal of the rate shares: each sees the other
            pids = [bot.process.pid for bot in bots if bot.process is not None]
            rig = DiscordRig(fake, pids[0])
            rig.pids = pids
            rig.logs = [bot.logs for bot in bots]  # type: ignore[attr-defined]
            # Channels alternate between the two servers, so each process gets half the streams.
            pairs = zip(fake.guild.channels, guild.channels, strict=True)
            rig._free = iter([c for pair in pairs for c in pair])
            yield rig
        finally:
            for bot in bots:
                await bot.stop()


class SlackPair(SlackRig):
    """Two replicas of one app in one workspace; /chat requests alternate between them."""

    def __init__(self, bots: Sequence[SlackBot]) -> None:
        super().__init__(bots[0])
        self.bots = list(bots)
        self.pids = [bot.process.pid for bot in bots]
        self._turn = 0

    async def ask(self, channel: str, prompt: str) -> None:
        self.bot = self.bots[self._turn % len(self.bots)]
        self._turn += 1
        await super().ask(channel, prompt)


@asynccontextmanager
async def slack_pair(llm: LLMFake, tmp: Path, url: str) -> AsyncIterator[SlackPair]:
    async with SlackFake(update_limit=(SLACK_UPDATES_PER_MIN, 60.0)) as fake:
        fake.limit("chat.appendStream", SLACK_APPENDS_PER_MIN, 60.0)
        bots: list[SlackBot] = []
        try:
            for i in range(PROCESSES):
                bot = await launch_bot(
                    llm,
                    fake,
                    tmp,
                    f"bot-{i}",
                    LOG_LEVEL="INFO",
                    DATABASE_URL=url,
                    DATABASE_POOL_SIZE=str(POOL),
                )
                bots.append(bot)
            await asyncio.sleep(2 * 2.0)  # a renewal of the rate shares: each sees the other
            shared = ["shared by 2" in bot.output() for bot in bots]
            if not any(shared):
                raise RuntimeError("the Slack replicas never saw each other's rate share")
            yield SlackPair(bots)
        finally:
            for bot in bots:
                await stop_bot(bot)


def complaints(rig: object) -> str:
    """The distinct warnings and errors the bots logged (their first words), to say why."""
    logs = getattr(rig, "logs", None) or [bot.output for bot in getattr(rig, "bots", ())]
    seen: dict[str, int] = {}
    for read in logs:
        for line in read().splitlines():
            if " WARNING " in line or " ERROR " in line or "Traceback" in line or "Error" in line:
                key = line.split(" ", 2)[-1][:160]
                seen[key] = seen.get(key, 0) + 1
    return "\n".join(f"    {count} x {line}" for line, count in list(seen.items())[:30])


@asynccontextmanager
async def loop_lag() -> AsyncIterator[list[float]]:
    """How late this process's loop (the platform fake's) wakes a 10 ms ticker, while the block
    runs: the fake counts a request when its loop reads it, so a late loop counts requests sent
    over more than a second in one of its windows."""
    lags: list[float] = []

    async def tick() -> None:
        while True:
            due = time.perf_counter() + 0.01
            await asyncio.sleep(0.01)
            lags.append(max(time.perf_counter() - due, 0.0))

    ticker = asyncio.create_task(tick())
    try:
        yield lags
    finally:
        ticker.cancel()


@asynccontextmanager
async def probe(url: str) -> AsyncIterator[asyncio.subprocess.Process]:
    """bench/store_probe.py on the same database until the block ends; its figures on stdout."""
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bench.store_probe", url,
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, limit=16 * 1024 * 1024,
    )  # fmt: skip
    assert process.stdout is not None and process.stdin is not None
    ready = await asyncio.wait_for(process.stdout.readline(), 60)
    if ready.strip() != b"ready":
        raise RuntimeError(f"the store probe did not start: {ready!r}")
    try:
        yield process
    finally:
        if process.returncode is None:
            process.kill()
        await process.wait()


async def probed(process: asyncio.subprocess.Process) -> dict[str, list[float]]:
    """Stop the probe's sampling and read its latencies (seconds, by operation)."""
    assert process.stdin is not None and process.stdout is not None
    process.stdin.write(b"stop\n")
    await process.stdin.drain()
    found: dict[str, list[float]] = json.loads(await process.stdout.readline())
    return found


def report_probe(tag: str, samples: dict[str, list[float]]) -> bool:
    from bench.common import percentile

    ok = True
    for name, target in PROBE_TARGETS.items():
        values = samples.get(name) or [float("inf")]
        p50, p99 = percentile(values, 50), percentile(values, 99)
        good = p99 < target
        ok &= good
        row(f"{tag}: store {name} p50 / p99 ({len(values)} samples)",
            f"{p50 * 1000:.2f} / {p99 * 1000:.2f} ms", f"p99 < {target * 1000:.0f} ms",
            verdict(good))  # fmt: skip
    return ok


async def main(
    platforms: Sequence[str] = ("discord", "slack"), rtts: Sequence[float] = RTTS
) -> bool:
    try:
        import asyncpg  # noqa: F401  # the postgres extra
    except ImportError:
        print("replicas: skipped (asyncpg is not installed)")
        return True
    server = PgServer(settings=PG_SETTINGS)
    try:
        server.start()
    except (PgUnavailable, PgStartError) as exc:
        print(f"replicas: skipped ({exc})")
        return True
    n = PER_PROCESS * PROCESSES
    print(
        f"Replicas: {PROCESSES} python -m bot processes over one PostgreSQL, {PER_PROCESS} streams"
        f" each; {TOKENS} tokens at {1 / TOKEN_GAP:.0f}/s after {FIRST_TOKEN * 1000:.0f} ms"
    )
    ok = True
    try:
        for rtt, platform in ((r, p) for r in rtts for p in platforms):
            database = f"{platform}_{int(rtt * 1000)}"
            server.create_database(database)
            url = server.url(database)
            print(f"-- {platform}, platform round trip {rtt * 1000:.0f} ms", flush=True)
            pair = discord_pair if platform == "discord" else slack_pair
            with tempfile.TemporaryDirectory() as tmp:
                async with (
                    remote_provider() as provider,
                    pair(provider.llm, Path(tmp), url) as rig,
                ):
                    rig.fake.rtt = rtt
                    await run(rig, provider, WARM_UP * PROCESSES, count=40, first=0.02, gap=0.005)
                    async with probe(url) as prober, loop_lag() as lags:
                        try:
                            result = await run(
                                rig, provider, n, count=TOKENS, first=FIRST_TOKEN, gap=TOKEN_GAP
                            )
                        except RuntimeError as exc:
                            row(f"{platform} x{n}: every reply finished", str(exc), "all",
                                "MISSED")  # fmt: skip
                            print(complaints(rig))
                            ok = False
                            continue
                        samples = await probed(prober)
                    ok &= report([result])
                    for logs in getattr(rig, "logs", ()):
                        fewer = logs().count(" processes: each paces at")
                        row(f"{platform} x{n}: a process saw fewer sharing the rate", str(fewer))
                    late = sum(1 for lag in lags if lag > 0.1)
                    row(f"{platform} x{n}: the fake's loop: max lag / wakes over 100 ms late",
                        f"{max(lags, default=0) * 1000:.0f} ms / {late}")  # fmt: skip
                    ok &= report_probe(f"{platform} x{n}", samples)
    finally:
        server.stop()
    return ok


if __name__ == "__main__":
    sys.exit(0 if asyncio.run(main()) else 1)
