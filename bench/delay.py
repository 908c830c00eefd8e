"""Token delay (issue 15): how long each token waits before a user sees it, through the real bot
process against the strict Discord and Slack fakes (bench/stream.py's rigs), at platform round
trips of 0 and 100 ms.

Each reply streams 350, 375, 400 or 425 tokens at 50 tokens/s after a 200 ms first token; each
length runs three times. Per run: the token delay mean and p95 over every token of every reply
(written by the provider -> first platform state showing it) and the tail (the last token's
delay, averaged over the replies: how long the end of a reply waits). Per length, the median of
the runs; the figure is the mean over the four lengths. On Discord every conversation is in a
channel of its own, asked with `/chat` and by mention, at 1 and 10 and (one run of each length)
50 and 100 at once; Slack in one workspace, each reply in its own channel and (ten) all in one
channel, each in its thread, and one lone reply of 3,000 tokens. For Slack at ten, the longest
wait between two states showing new text.
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from bench.common import median, percentile, row, verdict
from bench.stream import (
    FIRST_TOKEN,
    RTTS,
    TOKEN_GAP,
    DiscordRig,
    Run,
    SlackRig,
    _what,
    remote_provider,
    rig_for,
    run,
)

LENGTHS = (350, 375, 400, 425)
RUNS = 3
CONVERSATIONS = (1, 10)
CROWDS = {"discord": (50, 100)}
"""Conversations at once on top of CONVERSATIONS, one run of each length (they take longest)."""
TARGETS: dict[tuple[str, int], tuple[float, float | None, float | None]] = {
    ("discord", 1): (0.62, 1.15, 0.25),
    ("discord", 10): (0.62, 1.15, 0.25),
    ("discord", 50): (0.75, None, 0.4),
    ("discord", 100): (1.5, None, None),
    ("slack", 1): (0.25, None, 0.15),
    ("slack", 10): (2.0, None, 0.5),
}
"""(platform, conversations): token delay mean, p95 and tail (None: no target), in seconds;
Discord's for `/chat` and mentions alike."""
FIRST_TEXT = {("discord", 50): ("p50", 0.3), ("discord", 100): ("max", 1.5)}
"""The provider's first token -> the first text showing it: its median, or every reply's."""
PEAK_MB = 77
"""Peak memory of the bot process at one conversation: llmcord's (issue 15)."""
QUIET = {("slack", 1): 20.0, ("slack", 10): 30.0}
"""Seconds of quiet before each run: a lone Slack reply, or ten at once, arrive in a quiet
workspace, whose burst has refilled (a quarter of a minute's calls, refilled at the steady rate
in ~20 s; ten replies leave it emptier). Back to back, twelve runs in a row are a workspace busy
for minutes, and the steady rate is what they get (`main(quiet=False)`)."""
MAX_GAP = {("slack", 10): 3.0}
"""Seconds: every reply shows new text at least this often (the longest wait between two states
that showed new tokens, the worst reply of the median run)."""
LONG = {"slack": (3000, 1.0)}
"""A lone reply of this many tokens, exact, with a token delay mean of at most this (one run)."""


@dataclass(frozen=True, slots=True)
class Delay:
    mean: float
    p95: float
    tail: float


def delay_of(result: Run) -> Delay:
    lags = [lag for c in result.conversations for lag in c.lags]
    tails = [c.lags[-1] for c in result.conversations if c.lags]
    if not lags or not tails:
        return Delay(float("inf"), float("inf"), float("inf"))
    return Delay(sum(lags) / len(lags), percentile(lags, 95), sum(tails) / len(tails))


def summary(per_length: Sequence[Sequence[Run]]) -> Delay:
    """Per length the median of its runs, then the mean over the lengths."""
    medians = []
    for runs in per_length:
        delays = [delay_of(r) for r in runs]
        medians.append(
            Delay(
                median([d.mean for d in delays]),
                median([d.p95 for d in delays]),
                median([d.tail for d in delays]),
            )
        )
    count = len(medians)
    return Delay(
        sum(d.mean for d in medians) / count,
        sum(d.p95 for d in medians) / count,
        sum(d.tail for d in medians) / count,
    )


def report(
    platform: str, rtt: float, n: int, per_length: Sequence[Sequence[Run]], where: str = ""
) -> bool:
    tag = f"{platform} x{n}{where} @{rtt * 1000:.0f} ms"
    got = summary(per_length)
    mean, p95, tail = TARGETS[(platform, n)]
    ok_mean = got.mean <= mean
    ok_p95 = p95 is None or got.p95 <= p95
    ok_tail = tail is None or got.tail <= tail
    runs = [r for rs in per_length for r in rs]
    total = sum(len(r.conversations) for r in runs)
    exact = sum(c.exact for r in runs for c in r.conversations)
    limited = [x for r in runs for x in r.rate_limited]
    ok_exact = exact == total and not limited
    row(f"{tag}: token delay mean", f"{got.mean:.2f} s", f"<= {mean:.2f} s", verdict(ok_mean))
    row(
        f"{tag}: token delay p95",
        f"{got.p95:.2f} s",
        f"<= {p95:.2f} s" if p95 is not None else "",
        verdict(ok_p95) if p95 is not None else "",
    )
    tail_target = f"<= {tail:.2f} s" if tail is not None else ""
    row(f"{tag}: tail (last token's delay)", f"{got.tail:.2f} s", tail_target,
        verdict(ok_tail) if tail is not None else "")  # fmt: skip
    row(f"{tag}: 429s / exact final texts", f"{len(limited)} / {exact} of {total}{_what(limited)}",
        "0 / all", verdict(ok_exact))  # fmt: skip
    ok_first = True
    if (platform, n) in FIRST_TEXT:
        which, limit = FIRST_TEXT[(platform, n)]
        firsts = [c.ttfv for r in runs for c in r.conversations]
        got_first = median(firsts) if which == "p50" else max(firsts)
        ok_first = got_first <= limit
        row(f"{tag}: first token -> first text, {which} of replies", f"{got_first:.2f} s",
            f"<= {limit:.2f} s", verdict(ok_first))  # fmt: skip
    ok_gap = True
    if (platform, n) in MAX_GAP:
        gaps = [median([max(c.gap for c in r.conversations) for r in rs]) for rs in per_length]
        ok_gap = max(gaps) <= MAX_GAP[(platform, n)]
        row(f"{tag}: longest wait for new text, worst reply", f"{max(gaps):.1f} s",
            f"<= {MAX_GAP[(platform, n)]:.1f} s", verdict(ok_gap))  # fmt: skip
    ok_memory = True
    if n == 1:
        peak = max(r.peak_rss_kb for r in runs) / 1024
        ok_memory = peak <= PEAK_MB
        row(f"{tag}: bot peak RSS", f"{peak:.0f} MB", f"<= {PEAK_MB} MB", verdict(ok_memory))
    return ok_mean and ok_p95 and ok_tail and ok_exact and ok_first and ok_gap and ok_memory


def report_long(platform: str, rtt: float, result: Run) -> bool:
    tokens, target = LONG[platform]
    got = delay_of(result)
    [conversation] = result.conversations
    ok = got.mean <= target and conversation.exact and not result.rate_limited
    row(f"{platform} x1 of {tokens:,} tokens @{rtt * 1000:.0f} ms: token delay mean / exact / 429s",
        f"{got.mean:.2f} s / {'yes' if conversation.exact else 'NO'} / {len(result.rate_limited)}",
        f"<= {target:.2f} s / yes / 0", verdict(ok))  # fmt: skip
    return ok


async def main(
    platforms: Sequence[str] = ("discord", "slack"),
    rtts: Sequence[float] = RTTS,
    conversations: Sequence[int] = CONVERSATIONS,
    lengths: Sequence[int] = LENGTHS,
    runs: int = RUNS,
    quiet: bool = True,
    long: bool = True,
    crowds: bool = True,
    how: Sequence[str] | None = None,
) -> bool:
    """`how`: only the cases asked that way ("" for /chat, "mention", "one channel")."""
    print(
        f"Token delay through the platform fakes: replies of {', '.join(map(str, lengths))} tokens"
        f" at {1 / TOKEN_GAP:.0f}/s after {FIRST_TOKEN * 1000:.0f} ms, {runs} runs each; per"
        " length the median run, then the mean over the lengths"
    )
    ok = True
    for rtt, platform in ((r, p) for r in rtts for p in platforms):
        # (conversations, how they ask, runs of each length)
        cases = [(n, "", runs) for n in conversations]
        if platform == "discord":
            cases += [(n, "mention", runs) for n in conversations]
            if crowds:
                cases += [(n, way, 1) for n in CROWDS["discord"] for way in ("", "mention")]
        else:
            cases += [(n, "one channel", runs) for n in conversations if n > 1]
        if how is not None:
            cases = [case for case in cases if case[1] in how]
        channels = sum(n * k for n, _, k in cases) * len(lengths) + 1
        with tempfile.TemporaryDirectory() as tmp:
            async with (
                remote_provider() as provider,
                rig_for(platform, provider.llm, Path(tmp), channels, rtt) as rig,
            ):
                for n, way, count in cases:
                    if isinstance(rig, SlackRig):
                        rig.one_channel = way == "one channel"
                    if isinstance(rig, DiscordRig):
                        rig.mention = way == "mention"
                    rest = QUIET.get((platform, n), 0.0) if quiet else 0.0
                    per_length = []
                    for length in lengths:
                        results = []
                        for _ in range(count):
                            await asyncio.sleep(rest)
                            results.append(
                                await run(rig, provider, n, count=length, first=FIRST_TOKEN,
                                          gap=TOKEN_GAP)
                            )  # fmt: skip
                        per_length.append(results)
                    where = {"mention": " by mention", "one channel": " in one channel"}
                    ok &= report(platform, rtt, n, per_length, where.get(way, ""))
                if isinstance(rig, SlackRig):
                    rig.one_channel = False
                if long and platform in LONG:
                    await asyncio.sleep(QUIET.get((platform, 1), 0.0))
                    count = LONG[platform][0]
                    if isinstance(rig, SlackRig):  # more than the model's default answer
                        await rig.long_answers()
                    result = await run(rig, provider, 1, count=count, first=FIRST_TOKEN,
                                       gap=TOKEN_GAP)  # fmt: skip
                    ok &= report_long(platform, rtt, result)
    return ok


if __name__ == "__main__":
    sys.exit(0 if asyncio.run(main()) else 1)
