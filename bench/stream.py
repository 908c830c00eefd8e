"""Streaming quality and load, in process: a ChatEngine (real store on a temp SQLite file, real
router and providers over HTTP on loopback to the LLMFake) answering N concurrent conversations,
each on its own MemorySurface with a platform's limits and edit bucket.

The fake streams 400 tokens at 50 tokens/s after a 200 ms first token (the fake's per-piece
delays); each token's write time is recorded with time.monotonic(), the clock the surface stamps
its events with. Per conversation: time to first visible text after the provider's first token;
display lag per token (token written -> first surface event whose text shows it); 429s; the exact
final text. Targets (issue 7): TTFV p50 < 50 ms at 1 conversation, p99 < 250 ms at 100; mean lag
<= 0.6 x the sustainable edit interval; zero 429s; every final text exact; < 64 KB per stream.

Not yet measured here: the Discord/Slack HTTP fakes (this drives the core + streamer against an
in-memory surface), and Slack's "10 conversations in one workspace".
"""

from __future__ import annotations

import asyncio
import re
import sys
import tempfile
import time
import tracemalloc
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from unittest import mock

from aiohttp import web

from bench.common import median, percentile, row, verdict
from bot.app import build_catalog, build_router
from bot.clock import SYSTEM_CLOCK
from bot.domain import ChatOptions, ChatRequest, ConversationKey
from bot.engine.chat import ChatEngine
from bot.ports import PlatformLimits
from bot.store import Store
from tests.fakes.llm import server as llm_server
from tests.fakes.llm_server import Call, LLMFake, Script, StreamScript, workers_stream
from tests.fakes.surface import MemorySurface
from tests.support import settings_for

TOKENS = 400
FIRST_TOKEN = 0.2  # seconds before the first token
TOKEN_GAP = 1 / 50  # 50 tokens/s
SIZES = (1, 10, 100, 1000)
BIG_RUN_BUDGET = 60.0  # seconds: the 1,000-stream run is kept only if it finishes within this
_TOKEN = re.compile(r"w(\d{4})(?!\d)")


@dataclass(frozen=True)
class Platform:
    name: str
    limits: PlatformLimits
    edit_bucket: tuple[int, float] | None
    sustainable_interval: float
    """Seconds per edit the platform sustains per message: the lag target is 0.6 x this."""


DISCORD = Platform("discord", PlatformLimits(max_chars=2000, min_edit_interval=1.0), (5, 5.0), 1.0)
# Slack: chat.update is Tier 3 (~50/min per app and workspace); the bucket below is the stricter
# per-message reading: one edit per second per message.
SLACK = Platform("slack", PlatformLimits(max_chars=3500, min_edit_interval=1.3), (1, 1.0), 1.3)


def tokens(count: int) -> list[str]:
    """Fixed-width, unique words: 'w0000', ' w0001', ...; 400 of them are 2,399 characters."""
    return [f"{' ' if i else ''}w{i:04d}" for i in range(count)]


@dataclass
class Recorder:
    """Write times of each token, per conversation, stamped by the fake as it sends them."""

    scripts: dict[int, int] = field(default_factory=dict)  # id(script) -> conversation
    sent: dict[int, list[float]] = field(default_factory=dict)
    first_request: dict[int, float] = field(default_factory=dict)

    async def play(self, request: web.Request, script: Script) -> web.StreamResponse:
        """The fake's own player (tests/fakes/llm/server.py `_play`), plus a timestamp per piece."""
        conv = self.scripts.get(id(script))
        if conv is None or not isinstance(script, StreamScript):
            return await _ORIGINAL_PLAY(request, script)
        stamps = self.sent.setdefault(conv, [])
        headers = {"Content-Type": script.content_type, "Cache-Control": "no-cache"}
        response = web.StreamResponse(status=script.status, headers=headers)
        await response.prepare(request)
        try:
            for piece in script.pieces:
                if piece.delay > 0:
                    await asyncio.sleep(piece.delay)
                await response.write(piece.data)
                stamps.append(time.monotonic())
            await response.write_eof()
        except ConnectionError:
            pass
        return response


_ORIGINAL_PLAY = llm_server._play


def script_for(pieces: Sequence[str], first: float, gap: float) -> StreamScript:
    base = workers_stream(pieces, delay=gap)
    first_piece = replace(base.pieces[0], delay=first)
    tail = tuple(replace(p, delay=0.0) for p in base.pieces[len(pieces) :])  # usage, [DONE]
    return replace(base, pieces=(first_piece, *base.pieces[1 : len(pieces)], *tail))


@dataclass
class Result:
    exact: bool
    rate_limited: int
    ttfv: float  # seconds, token 0 written -> first event showing it
    lags: list[float]
    duration: float  # first token written -> last token written (the achieved pace)


def analyse(surface: MemorySurface, sent: list[float], expected: str, text: str) -> Result:
    count = len(sent) - 2  # the usage chunk and [DONE] follow the tokens
    shown_at: list[float | None] = [None] * count
    shown = -1
    for event in surface.events:
        if event.kind == "notify":
            continue
        found = _TOKEN.findall(event.text[-24:])
        if not found:
            continue
        index = int(found[-1])
        while shown < index and shown + 1 < count:
            shown += 1
            shown_at[shown] = event.at
    lags = [s - t for s, t in zip(shown_at, sent, strict=False) if s is not None]
    visible = surface.visible_text(" ").split()
    exact = text == expected and visible == expected.split() and None not in shown_at
    return Result(
        exact,
        surface.rate_limited,
        (shown_at[0] or float("inf")) - sent[0],
        lags,
        sent[count - 1] - sent[0],
    )


@asynccontextmanager
async def engine_on(fake: LLMFake, url: str) -> AsyncIterator[ChatEngine]:
    settings = settings_for(fake, openai_api_key=None, anthropic_api_key=None, database_url=url)
    catalog = build_catalog(settings)
    router = build_router(settings, catalog)  # the bot's own provider clients and pools
    store = await Store.open(settings.database_url)
    try:
        yield ChatEngine(store, router, catalog, default_model="llama-3.1-8b", system_prompt=None)
    finally:
        await router.registry.aclose()
        await store.close()


@dataclass
class Run:
    results: list[Result]
    wall: float
    cpu: float
    peak_bytes: int | None


async def run(
    platform: Platform,
    n: int,
    *,
    count: int = TOKENS,
    first: float = FIRST_TOKEN,
    gap: float = TOKEN_GAP,
    trace_memory: bool = False,
) -> Run:
    pieces = tokens(count)
    expected = "".join(pieces)
    recorder = Recorder()
    with (
        tempfile.TemporaryDirectory() as tmp,
        mock.patch.object(llm_server, "_play", recorder.play),
    ):
        async with (
            LLMFake() as fake,
            engine_on(fake, f"sqlite+aiosqlite:///{Path(tmp) / 'bench.db'}") as engine,
        ):

            def respond(call: Call) -> Script:
                conv = int(call.body["messages"][-1]["content"].split()[-1])
                script = script_for(pieces, first, gap)
                recorder.scripts[id(script)] = conv
                return script

            fake.respond_with("workers", respond)
            surfaces = [
                MemorySurface(
                    SYSTEM_CLOCK,
                    platform.limits,
                    edit_bucket=platform.edit_bucket,
                    channel=f"c{i}",
                )
                for i in range(n)
            ]

            async def one(i: int) -> str:
                key = ConversationKey(platform.name, "bench", f"c{i}", f"t{i}")
                request = ChatRequest(key, f"u{i}", f"stream {i}", ChatOptions())
                outcome = await engine.handle(request, surfaces[i])
                return outcome.text

            if trace_memory:
                tracemalloc.start()
                tracemalloc.reset_peak()
                base, _ = tracemalloc.get_traced_memory()
            cpu, wall = time.process_time(), time.perf_counter()
            texts = await asyncio.gather(*(one(i) for i in range(n)))
            wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
            peak = None
            if trace_memory:
                peak = tracemalloc.get_traced_memory()[1] - base
                tracemalloc.stop()
    results = [
        analyse(surfaces[i], recorder.sent.get(i, [0.0, 0.0, 0.0]), expected, texts[i])
        for i in range(n)
    ]
    return Run(results, wall, cpu, peak)


def report(platform: Platform, n: int, result: Run) -> bool:
    rs = result.results
    ttfv = [r.ttfv * 1000 for r in rs]
    means = [sum(r.lags) / len(r.lags) for r in rs if r.lags]
    all_lags = [lag for r in rs for lag in r.lags]
    exact = sum(r.exact for r in rs)
    limited = sum(r.rate_limited for r in rs)
    target_lag = 0.6 * platform.sustainable_interval
    mean_lag = sum(all_lags) / len(all_lags) if all_lags else float("inf")
    pace = median([(TOKENS - 1) / r.duration for r in rs if r.duration > 0] or [0.0])
    ok = exact == n and limited == 0 and mean_lag <= target_lag
    tag = f"{platform.name} x{n}"
    if n == 1:
        ok &= median(ttfv) < 50
        row(f"{tag}: time to first visible text p50", f"{median(ttfv):.1f} ms", "< 50 ms",
            verdict(median(ttfv) < 50))  # fmt: skip
    else:
        p99_ok = n != 100 or percentile(ttfv, 99) < 250
        ok &= p99_ok
        row(
            f"{tag}: time to first visible text p50 / p99",
            f"{median(ttfv):.0f} / {percentile(ttfv, 99):.0f} ms",
            "p99 < 250 ms" if n == 100 else "",
            verdict(p99_ok) if n == 100 else "",
        )
    row(
        f"{tag}: display lag mean (p50 / p99 of all tokens)",
        f"{mean_lag * 1000:.0f} ms ({median(all_lags) * 1000:.0f} / "
        f"{percentile(all_lags, 99) * 1000:.0f})",
        f"<= {target_lag * 1000:.0f} ms",
        verdict(mean_lag <= target_lag),
    )
    row(
        f"{tag}: worst conversation's mean lag",
        f"{max(means, default=float('inf')) * 1000:.0f} ms",
    )
    row(f"{tag}: 429s / exact final texts", f"{limited} / {exact} of {n}", "0 / all",
        verdict(limited == 0 and exact == n))  # fmt: skip
    row(f"{tag}: provider pace achieved (median) / wall", f"{pace:.1f} tok/s / {result.wall:.1f} s")
    return ok


async def main() -> bool:
    print(
        f"Streaming quality and load (in process: ChatEngine + ReplyStreamer on MemorySurface; "
        f"{TOKENS} tokens at {1 / TOKEN_GAP:.0f}/s after {FIRST_TOKEN * 1000:.0f} ms)"
    )
    ok = True
    largest: dict[str, int] = {}
    for platform in (DISCORD, SLACK):
        for n in SIZES:
            result = await run(platform, n)
            if n == 1000 and result.wall > BIG_RUN_BUDGET:
                row(f"{platform.name} x{n}: took {result.wall:.0f} s", "over budget", "< 60 s")
            ok &= report(platform, n, result)
            largest[platform.name] = n
            if n == max(SIZES):
                tokens_k = n * TOKENS / 1000
                row(
                    f"{platform.name} x{n}: process CPU s per 1,000 tokens",
                    f"{result.cpu / tokens_k:.3f} s",
                    "(bot + fake)",
                )
    n = max(SIZES)
    result = await run(DISCORD, n, trace_memory=True)
    assert result.peak_bytes is not None
    per_stream = result.peak_bytes / n / 1024
    ok &= per_stream < 64
    row(f"discord x{n}: peak traced memory per stream", f"{per_stream:.1f} KB", "< 64 KB",
        verdict(per_stream < 64))  # fmt: skip
    return ok


async def smoke() -> bool:
    """50 concurrent short streams (40 tokens, fast): exact final texts and zero 429s."""
    print("Streaming smoke: 50 concurrent streams of 40 tokens, Discord and Slack limits")
    ok = True
    for platform in (DISCORD, SLACK):
        start = time.perf_counter()
        result = await run(platform, 50, count=40, first=0.02, gap=0.005)
        exact = sum(r.exact for r in result.results)
        limited = sum(r.rate_limited for r in result.results)
        good = exact == 50 and limited == 0
        ok &= good
        row(
            f"{platform.name} x50: 429s / exact final texts",
            f"{limited} / {exact} of 50",
            f"{time.perf_counter() - start:.1f} s",
            verdict(good),
        )
    return ok


if __name__ == "__main__":
    sys.exit(0 if asyncio.run(main()) else 1)
