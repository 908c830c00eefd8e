"""Streaming quality and load through the platforms: the real `python -m bot` process against the
strict Discord and Slack fakes and the LLM fake, all on loopback.

The bench process hosts the platform fake; the LLM fake runs in a process of its own
(bench/llm_process.py; in process for the smoke run), and so does the bot, whose CPU time and
memory are read from /proc for the bot alone. Each conversation is a /chat in a channel of its
own. The LLM fake streams 400 tokens at 50 tokens/s after a 200 ms first token and stamps each
token's write with time.monotonic(); the platform fakes stamp every content change they show
(their `timeline`) with the same clock, which is system-wide, so the processes' stamps compare.

Per conversation: time to first visible text (token 0 written -> first platform state showing
it); display lag per token (written -> first state showing it); the 429s the fakes answered; and
whether the final visible text is exactly the reply. The fakes enforce the platforms' real
buckets: Discord 5 message edits and creates per 5 s per channel, 5 webhook edits per 5 s per
interaction token, and 50 requests/s per bot (interaction endpoints exempt); Slack `chat.update`
50/min (Tier 3) and `chat.appendStream` 100/min (Tier 4) per workspace.

The display-lag target is 0.6 x the platform's sustainable edit interval for one stream, which
depends on how many streams share a bucket: a Discord /chat reply streams through its own
interaction webhook, outside the global 50/s, so its interval is 1 s whatever N; Slack's
chat.update budget is shared by every stream in the workspace (60 s x N / 50). The bot serves
one Slack workspace per process (one bot token), so all Slack conversations here are in one
workspace, each in its own channel.
"""

from __future__ import annotations

import asyncio
import gc
import itertools
import json
import math
import os
import re
import socket
import sys
import tempfile
import time
from collections import Counter
from collections.abc import AsyncIterator, Iterable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path

from bench.common import median, percentile, row, verdict
from tests.e2e.discord.conftest import BotProcess, discord_env
from tests.e2e.slack.conftest import ALICE, SlackBot, launch_bot, stop_bot
from tests.e2e.slack.helpers import run_command
from tests.fakes.discord import FakeDiscord
from tests.fakes.discord.payloads import text_of
from tests.fakes.discord.ratelimit import Buckets, BucketSpec
from tests.fakes.discord.server import DEFAULT_BUCKETS
from tests.fakes.llm_server import Call, LLMFake, Script, StreamScript, workers_stream
from tests.fakes.slack import Message as SlackMessage
from tests.fakes.slack import SlackFake

TOKENS = 400
FIRST_TOKEN = 0.2  # seconds before the first token
TOKEN_GAP = 1 / 50  # 50 tokens/s
PLAN = ((1, 3), (10, 2), (100, 2), (1000, 1))
"""(concurrent conversations, runs): small runs repeat, since their figures are the noisiest."""
DISCORD_GLOBAL = 50  # requests per second per bot (the fake's limit)
DISCORD_PACE = 45.0  # what the bot allows itself (DISCORD_GLOBAL_RATE_PER_SECOND, its default)
SLACK_UPDATES_PER_MIN = 50  # chat.update, Tier 3
SLACK_APPENDS_PER_MIN = 100  # chat.appendStream, Tier 4
GUILD_CHANNELS = 500  # Discord's limit per server
_DUMP_LIMIT = 64 * 1024 * 1024  # bytes: one run's write times, as one JSON line
_TOKEN = re.compile(r"\bw(\d{4})\b")


def tokens(count: int) -> list[str]:
    """Fixed-width, unique words: 'w0000', ' w0001', ...; 400 of them are 2,399 characters."""
    return [f"{' ' if i else ''}w{i:04d}" for i in range(count)]


def script_for(pieces: Sequence[str], first: float, gap: float) -> StreamScript:
    base = workers_stream(pieces, delay=gap)
    first_piece = replace(base.pieces[0], delay=first)
    tail = tuple(replace(p, delay=0.0) for p in base.pieces[len(pieces) :])  # usage, [DONE]
    return replace(base, pieces=(first_piece, *base.pieces[1 : len(pieces)], *tail), sent=[])


@dataclass(slots=True)
class Reply:
    """What one conversation's channel showed: its reply messages, and every state, when."""

    messages: list[str] = field(default_factory=list)  # message ids (Slack: ts), in order
    shown: list[tuple[float, str]] = field(default_factory=list)
    done: bool = False


class Rig:
    """One platform fake with the bot process connected to it; subclasses read the fake."""

    name = ""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.pids = [pid]
        """The bot's processes (bench/replicas.py runs two): their CPU and memory are summed."""
        self.replies: dict[str, Reply] = {}
        self._read = 0

    def channels(self, n: int) -> list[str]:
        raise NotImplementedError

    async def ask(self, channel: str, prompt: str) -> None:
        raise NotImplementedError

    def rate_limited(self) -> list[str]:
        """What each 429 the fake has answered so far was for (route or method), in order."""
        raise NotImplementedError

    def collect(self) -> None:
        """Read what the fake showed since the last call into `replies`."""
        raise NotImplementedError

    def finished(self, channel: str) -> bool:
        raise NotImplementedError

    def final_parts(self, channel: str) -> list[list[str]]:
        """The words of each message of the finished reply, in order."""
        raise NotImplementedError

    def sustainable_interval(self, n: int, part: int) -> float:
        """Seconds between edits one of `n` streams can sustain on its reply's `part`th message."""
        raise NotImplementedError

    def _record(self, reply: Reply, message: str, at: float, text: str) -> None:
        if message not in reply.messages:
            reply.messages.append(message)
        reply.shown.append((at, text))


# -- Discord ---------------------------------------------------------------------------------------


class DiscordRig(Rig):
    name = "discord"

    def __init__(self, fake: FakeDiscord, pid: int, *, mention: bool = False) -> None:
        super().__init__(pid)
        self.fake = fake
        self.mention = mention
        """Ask by mentioning the bot in the channel instead of with /chat."""
        self._free = iter([c for g in [fake.guild, *fake.other_guilds] for c in g.channels])
        self._reply_of: dict[str, Reply] = {}  # channel, thread or message id -> its reply

    def channels(self, n: int) -> list[str]:
        picked = list(itertools.islice(self._free, n))
        if len(picked) < n:
            raise RuntimeError("the bench made too few channels")
        for channel in picked:
            self._reply_of[channel] = self.replies[channel] = Reply()
        return picked

    async def ask(self, channel: str, prompt: str) -> None:
        if self.mention:
            await self.fake.say(prompt, channel=channel, mention=True)
        else:
            await self.fake.slash("chat", {"prompt": prompt}, channel=channel)

    def rate_limited(self) -> list[str]:
        return [
            "global" if c in self.fake.global_limited else c.route for c in self.fake.rate_limited
        ]

    def collect(self) -> None:
        timeline = self.fake.timeline
        for shown in timeline[self._read :]:
            # The reply's thread has the id of its first message (the placeholder).
            reply = self._reply_of.get(shown.channel_id)
            if reply is None:
                continue
            message = self.fake.messages[shown.message_id]
            if "interaction_metadata" in message or message["author"]["id"] != self.fake.app_id:
                continue  # the /chat echo or the user's mention, not the reply
            self._reply_of[shown.message_id] = reply
            self._record(reply, shown.message_id, shown.at, shown.content)
        self._read = len(timeline)

    def finished(self, channel: str) -> bool:
        reply = self.replies[channel]
        if not reply.done and reply.messages:
            last = self.fake.messages[reply.messages[-1]]
            reply.done = any(c.startswith("parley:regenerate:") for c in self.fake.custom_ids(last))
        return reply.done

    def final_parts(self, channel: str) -> list[list[str]]:
        ids = self.replies[channel].messages
        return [text_of(self.fake.messages[m]).split() for m in ids]

    def sustainable_interval(self, n: int, part: int) -> float:
        # A /chat reply's first message is edited through its interaction's webhook: 5 edits per
        # 5 s per token, not counted by the global 50/s. What overflows goes into the thread with
        # the bot token, so those edits share the global 50/s with every other stream.
        return 1.0 if part == 0 else max(1.0, n / DISCORD_GLOBAL)


@asynccontextmanager
async def discord_rig(llm: LLMFake, tmp: Path, channels: int) -> AsyncIterator[DiscordRig]:
    global_limit = BucketSpec(DISCORD_GLOBAL, 1.0)
    async with FakeDiscord(
        channels=min(channels, GUILD_CHANNELS), global_limit=global_limit
    ) as fake:
        for first in range(GUILD_CHANNELS, channels, GUILD_CHANNELS):
            count = min(channels - first, GUILD_CHANNELS)
            fake.add_guild(f"bench-{len(fake.other_guilds)}", channels=count)
        # Discord's buckets as observed in production (the fake's defaults are faster, for tests).
        fake.buckets = Buckets({name: BucketSpec(5, 5.0) for name in DEFAULT_BUCKETS})
        env = discord_env(fake, llm, tmp, DISCORD_GLOBAL_RATE_PER_SECOND=str(DISCORD_PACE))
        env["LOG_LEVEL"] = "WARNING"
        bot = await BotProcess(fake, env, tmp).start()
        try:
            await fake.wait_until(lambda: fake.commands, 30, what="commands synced")
            assert bot.process is not None
            yield DiscordRig(fake, bot.process.pid)
        finally:
            await bot.stop()


# -- Slack -----------------------------------------------------------------------------------------


class SlackRig(Rig):
    name = "slack"

    SHARED = "C0BENCHALL"
    """With `one_channel`, the channel every conversation is asked in (each in its thread)."""

    def __init__(self, bot: SlackBot, *, one_channel: bool = False) -> None:
        super().__init__(bot.process.pid)
        self.bot = bot
        self.fake = bot.fake
        self.one_channel = one_channel
        self._serial = itertools.count()
        self.options = ""
        """Typed before each prompt (`persona:long` for a reply longer than the default)."""
        self._asked: dict[str, str] = {}  # the prompt's label -> its conversation's key
        self._thread_of: dict[str, str] = {}  # a question's ts (the thread) -> the key

    def channels(self, n: int) -> list[str]:
        prefix = f"{self.SHARED}:" if self.one_channel else "C0BENCH"
        picked = [f"{prefix}{next(self._serial):05d}" for _ in range(n)]
        for channel in picked:
            self.replies[channel] = Reply()
        return picked

    def _channel(self, key: str) -> str:
        return key.partition(":")[0]

    async def ask(self, channel: str, prompt: str) -> None:
        self._asked[prompt.split()[1]] = channel
        sent = await self.bot.sender.command(
            "/chat", f"{self.options} {prompt}".strip(), user=ALICE, channel=self._channel(channel)
        )
        if sent.status != 200:
            raise RuntimeError(f"/chat refused: {sent.status} {sent.body}")

    async def long_answers(self) -> None:
        """From now on, ask with a persona whose answers may be 4,000 tokens long (the
        model's default is shorter: a longer reply would be cut off, rightly)."""
        created = await run_command(
            self.bot, "/persona", "create long max_tokens:4000 Answer at length.",
            user=ALICE, channel=self.SHARED,
        )  # fmt: skip
        if "long" not in str(created.get("text", "")):
            raise RuntimeError(f"the persona was not created: {created}")
        self.options = "persona:long"

    def rate_limited(self) -> list[str]:
        return [c.method for c in self.fake.calls if c.rate_limited]

    def _key(self, channel: str, thread_ts: str) -> str | None:
        if not self.one_channel:
            return channel
        key = self._thread_of.get(thread_ts)
        if key is None:  # the question /chat quoted: "<@U> asked:\n> stream <label> ..."
            question = self.fake.messages.get((channel, thread_ts))
            found = re.search(r"stream (\d+) ", question.text) if question else None
            key = self._asked.get(found.group(1)) if found else None
            if key is not None:
                self._thread_of[thread_ts] = key
        return key

    def collect(self) -> None:
        timeline = self.fake.timeline
        for shown in timeline[self._read :]:
            message = self.fake.messages.get((shown.channel, shown.ts))
            # Only thread replies: not the quoted question the thread hangs from.
            if message is None or not message.thread_ts:
                continue
            key = self._key(shown.channel, message.thread_ts)
            reply = self.replies.get(key) if key is not None else None
            if reply is not None:
                self._record(reply, shown.ts, shown.at, shown.text)
        self._read = len(timeline)

    def _messages(self, channel: str) -> list[SlackMessage]:
        real = self._channel(channel)
        found = (self.fake.messages.get((real, ts)) for ts in self.replies[channel].messages)
        return [m for m in found if m is not None]  # the Stop note is deleted at the end

    def finished(self, channel: str) -> bool:
        reply = self.replies[channel]
        if not reply.done:
            reply.done = any(
                b.get("action_id") == "parley_regenerate"
                for m in self._messages(channel)
                for b in m.buttons()
            )
        return reply.done

    def final_parts(self, channel: str) -> list[list[str]]:
        return [m.text.split() for m in self._messages(channel)]

    def sustainable_interval(self, n: int, part: int) -> float:
        # chat.update's Tier 3 budget is per workspace: every stream in it shares it.
        return 60.0 * n / SLACK_UPDATES_PER_MIN


@asynccontextmanager
async def slack_rig(llm: LLMFake, tmp: Path) -> AsyncIterator[SlackRig]:
    async with SlackFake(update_limit=(SLACK_UPDATES_PER_MIN, 60.0)) as fake:
        fake.limit("chat.appendStream", SLACK_APPENDS_PER_MIN, 60.0)
        bot = await launch_bot(llm, fake, tmp, LOG_LEVEL="WARNING", SLACK_ADMIN_USERS=ALICE)
        try:
            yield SlackRig(bot)
        finally:
            await stop_bot(bot)


# -- the bot process, from /proc ---------------------------------------------------------------


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime


def memory_kb(pid: int) -> dict[str, int]:
    found = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        name, _, value = line.partition(":")
        if name in ("VmRSS", "VmHWM"):
            found[name] = int(value.split()[0])
    return found


def reset_peak(pid: int) -> None:
    """Start VmHWM afresh at the current RSS (Linux: "5" to clear_refs)."""
    Path(f"/proc/{pid}/clear_refs").write_text("5")


# -- one run -------------------------------------------------------------------------------------


@dataclass
class Conversation:
    exact: bool
    ttfv: float  # seconds: token 0 written -> first state showing it
    lags: list[float]
    pace: float  # tokens/s the provider achieved
    parts: list[int] = field(default_factory=list)  # per token: which message of the reply
    gap: float = 0.0  # seconds: the longest wait between two states that showed new tokens


@dataclass
class Run:
    platform: str
    n: int
    conversations: list[Conversation]
    rate_limited: list[str]  # what each 429 in the run was for
    wall: float
    cpu: float
    peak_kb: int  # bot's RSS peak during the run over its RSS before
    sustainable: float  # the sustainable edit interval, averaged over the tokens shown
    peak_rss_kb: int = 0  # bot's RSS peak during the run (VmHWM, reset as the run began)


class Provider:
    """The LLM fake's answers: a stream per conversation, planned in its prompt
    ("stream <label> <tokens> <first token s> <gap s>"), with each token's write time kept."""

    def __init__(self, llm: LLMFake) -> None:
        self.llm = llm
        self.sent: dict[str, list[float]] = {}
        self._labels = itertools.count()
        llm.respond_with("workers", self._respond)

    def prompt(self, count: int, first: float, gap: float) -> str:
        return f"stream {next(self._labels)} {count} {first} {gap}"

    async def stamps(self) -> dict[str, list[float]]:
        return self.sent

    def _respond(self, call: Call) -> Script:
        return answer(str(call.body["messages"][-1]["content"]), self.sent)


def answer(prompt: str, sent: dict[str, list[float]]) -> StreamScript:
    """The scripted stream a planned prompt asks for; its write times go to `sent[prompt]`."""
    _, _, count, first, gap = prompt.split()
    script = script_for(tokens(int(count)), float(first), float(gap))
    sent[prompt] = script.sent if script.sent is not None else []
    return script


class RemoteProvider(Provider):
    """The same answers from an LLM fake in a process of its own (`bench/llm_process.py`), so
    that streaming 50,000 tokens a second does not slow the platform fake's event loop."""

    def __init__(self, process: asyncio.subprocess.Process, port: int) -> None:
        self.llm = LLMFake(port=port)  # never started: its addresses and keys, for the bot
        self.sent = {}
        self.process = process
        self._labels = itertools.count()

    async def stamps(self) -> dict[str, list[float]]:
        assert self.process.stdin is not None and self.process.stdout is not None
        self.process.stdin.write(b"dump\n")
        await self.process.stdin.drain()
        found: dict[str, list[float]] = json.loads(await self.process.stdout.readline())
        self.sent.update(found)
        return self.sent


@asynccontextmanager
async def remote_provider() -> AsyncIterator[RemoteProvider]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = int(sock.getsockname()[1])
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bench.llm_process",
        str(port),
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        limit=_DUMP_LIMIT,
    )
    try:
        assert process.stdout is not None
        ready = await asyncio.wait_for(process.stdout.readline(), 30)
        if ready.strip() != b"ready":
            raise RuntimeError(f"the LLM fake process did not start: {ready!r}")
        yield RemoteProvider(process, port)
    finally:
        if process.stdin is not None:
            process.stdin.close()
        try:
            await asyncio.wait_for(process.wait(), 10)
        except TimeoutError:
            process.kill()
            await process.wait()


def analyse(
    shown: Sequence[tuple[float, str]], sent: Sequence[float], expected: list[str], final: list[str]
) -> Conversation:
    count = len(expected)
    shown_at: list[float | None] = [None] * count
    for at, text in shown:
        for found in _TOKEN.findall(text):
            index = int(found)
            if index < count and shown_at[index] is None:
                shown_at[index] = at
    lags = [s - t for s, t in zip(shown_at, sent, strict=False) if s is not None]
    complete = len(sent) >= count and None not in shown_at
    ttfv = (shown_at[0] - sent[0]) if sent and shown_at[0] is not None else float("inf")
    pace = (count - 1) / (sent[count - 1] - sent[0]) if complete and count > 1 else 0.0
    news = sorted({at for at in shown_at if at is not None})
    gap = max((b - a for a, b in itertools.pairwise(news)), default=0.0)
    return Conversation(complete and final == expected, ttfv, lags, pace, gap=gap)


async def run(rig: Rig, provider: Provider, n: int, *, count: int, first: float, gap: float) -> Run:
    # The platform fake lives in this process and keeps every call and every state it showed. A
    # full garbage collection of that heap stalled this loop for up to 0.7 s mid-run; the fake
    # then took the requests that had queued meanwhile all at once, and its global window
    # counted 70 in one second from a bot that had sent 45 (0.4-0.5 s after each stall, every
    # time). The measuring side must not do that, so no collection while a run is measured.
    gc.collect()
    gc.disable()
    try:
        return await _measured(rig, provider, n, count=count, first=first, gap=gap)
    finally:
        gc.enable()


async def _measured(
    rig: Rig, provider: Provider, n: int, *, count: int, first: float, gap: float
) -> Run:
    channels = rig.channels(n)
    prompts = [provider.prompt(count, first, gap) for _ in channels]
    limited = len(rig.rate_limited())
    for pid in rig.pids:
        reset_peak(pid)
    rss = sum(memory_kb(pid)["VmRSS"] for pid in rig.pids)
    cpu, wall = sum(cpu_seconds(pid) for pid in rig.pids), time.perf_counter()
    for channel, prompt in zip(channels, prompts, strict=True):
        await rig.ask(channel, prompt)
    deadline = time.monotonic() + 60 + first + count * gap + n * 0.5
    pending = set(channels)
    while pending:
        if time.monotonic() > deadline:
            raise RuntimeError(f"{rig.name} x{n}: {len(pending)} replies never finished")
        await asyncio.sleep(0.1)
        rig.collect()
        pending = {c for c in pending if not rig.finished(c)}
    wall, cpu = time.perf_counter() - wall, sum(cpu_seconds(pid) for pid in rig.pids) - cpu
    peak_rss = sum(memory_kb(pid)["VmHWM"] for pid in rig.pids)
    peak = peak_rss - rss
    rig.collect()
    expected = "".join(tokens(count)).split()
    sent = await provider.stamps()
    conversations = []
    for channel, prompt in zip(channels, prompts, strict=True):
        parts = rig.final_parts(channel)
        words = [w for part in parts for w in part]
        conversation = analyse(rig.replies[channel].shown, sent.get(prompt, []), expected, words)
        conversation.parts = [i for i, part in enumerate(parts) for _ in part]
        conversations.append(conversation)
    # Each token's target follows the message it appears in (their buckets differ on Discord).
    intervals = [
        rig.sustainable_interval(n, part) for c in conversations for part in c.parts[: len(c.lags)]
    ]
    return Run(
        rig.name,
        n,
        conversations,
        rig.rate_limited()[limited:],
        wall,
        cpu,
        peak,
        sum(intervals) / len(intervals) if intervals else rig.sustainable_interval(n, 0),
        peak_rss,
    )


# -- reporting ---------------------------------------------------------------------------------


def _what(limited: Sequence[str]) -> str:
    """' (global 3, message.edit 1)': what the 429s were for, when there were any."""
    counts = Counter(limited)
    return f" ({', '.join(f'{k} {v}' for k, v in counts.most_common())})" if counts else ""


def _mean(values: Sequence[float]) -> float:
    return sum(values) / len(values) if values else float("nan")


def part_lag_means(run: Run) -> tuple[float, float]:
    """Mean display lag of the tokens in replies' first messages, and of those after them."""
    first: list[float] = []
    rest: list[float] = []
    for conversation in run.conversations:
        for lag, part in zip(conversation.lags, conversation.parts, strict=False):
            (rest if part else first).append(lag)
    return _mean(first), _mean(rest)


def spread(values: Sequence[float], unit: str = "", scale: float = 1.0, digits: int = 0) -> str:
    """The median of per-run values, with the range when there were several runs."""
    shown = [v * scale for v in values]
    text = f"{median(shown):.{digits}f}{unit}"
    if len(shown) > 1:
        text += f" ({min(shown):.{digits}f}–{max(shown):.{digits}f})"
    return text


def report(runs: Sequence[Run]) -> bool:
    first = runs[0]
    n, tag = first.n, f"{first.platform} x{first.n}"
    ttfv50 = [median([c.ttfv for c in r.conversations]) for r in runs]
    ttfv99 = [percentile([c.ttfv for c in r.conversations], 99) for r in runs]
    lags = [[lag for c in r.conversations for lag in c.lags] for r in runs]
    mean_lag = [sum(x) / len(x) if x else float("inf") for x in lags]
    lag99 = [percentile(x, 99) if x else float("inf") for x in lags]
    target_lag = 0.6 * median([r.sustainable for r in runs])
    exact = sum(sum(c.exact for c in r.conversations) for r in runs)
    total = n * len(runs)
    limited = sum(len(r.rate_limited) for r in runs)
    ok_ttfv = True
    if n == 1:
        ok_ttfv = median(ttfv50) < 0.050
        row(f"{tag}: first visible text p50", spread(ttfv50, " ms", 1000), "< 50 ms",
            verdict(ok_ttfv))  # fmt: skip
    else:
        if n == 100:
            ok_ttfv = median(ttfv99) < 0.250
        row(
            f"{tag}: first visible text p50 / p99",
            f"{spread(ttfv50, '', 1000)} / {spread(ttfv99, ' ms', 1000)}",
            "p99 < 250 ms" if n == 100 else "",
            verdict(ok_ttfv) if n == 100 else "",
        )
    ok_lag = median(mean_lag) <= target_lag
    row(f"{tag}: display lag mean (p99)",
        f"{spread(mean_lag, ' ms', 1000)} ({median(lag99) * 1000:.0f})",
        f"<= {target_lag * 1000:.0f} ms", verdict(ok_lag))  # fmt: skip
    if first.platform == "discord":
        pairs = [part_lag_means(r) for r in runs]
        rest = [p[1] for p in pairs if not math.isnan(p[1])]
        row(f"{tag}: lag mean, first message / rest",
            f"{spread([p[0] for p in pairs], ' ms', 1000)} / "
            + (spread(rest, " ms", 1000) if rest else "none (no reply overflowed)"))  # fmt: skip
    ok_exact = limited == 0 and exact == total
    what = _what([x for r in runs for x in r.rate_limited])
    row(f"{tag}: 429s / exact final texts", f"{limited} / {exact} of {total}{what}", "0 / all",
        verdict(ok_exact))  # fmt: skip
    paces = [median([c.pace for c in r.conversations]) for r in runs]
    tokens_k = [sum(len(c.lags) for c in r.conversations) / 1000 for r in runs]
    cpu = [r.cpu / k for r, k in zip(runs, tokens_k, strict=True) if k]
    wall = median([r.wall for r in runs])
    row(f"{tag}: provider pace / wall", f"{median(paces):.1f} tok/s / {wall:.1f} s")
    row(f"{tag}: bot CPU s per 1,000 tokens", spread(cpu, " s", digits=3))
    ok_memory = True
    if n >= 100:
        per_stream = [r.peak_kb / n for r in runs]
        ok_memory = n < 1000 or median(per_stream) < 64
        row(f"{tag}: bot peak RSS growth per stream", spread(per_stream, " KB", digits=1),
            "< 64 KB" if n == 1000 else "", verdict(ok_memory) if n == 1000 else "")  # fmt: skip
    return ok_ttfv and ok_lag and ok_exact and ok_memory


def _channels(plan: Iterable[tuple[int, int]]) -> int:
    return sum(n * runs for n, runs in plan)


@asynccontextmanager
async def rig_for(
    platform: str, llm: LLMFake, tmp: Path, channels: int, rtt: float = 0.0
) -> AsyncIterator[Rig]:
    """The platform fake and the bot; every REST / Web API call takes `rtt` seconds more."""
    if platform == "discord":
        async with discord_rig(llm, tmp, channels) as rig:
            rig.fake.rtt = rtt
            yield rig
    else:
        async with slack_rig(llm, tmp) as slack:
            slack.bot.fake.rtt = rtt
            yield slack


RTTS = (0.0, 0.1)
"""Platform round trips each plan runs at: loopback, and 100 ms (a bot far from Discord's or
Slack's API)."""


async def main(
    plan: Sequence[tuple[int, int]] = PLAN,
    platforms: Sequence[str] = ("discord", "slack"),
    rtts: Sequence[float] = RTTS,
) -> bool:
    print(
        f"Streaming through the platform fakes: python -m bot in its own process; {TOKENS} tokens "
        f"at {1 / TOKEN_GAP:.0f}/s after {FIRST_TOKEN * 1000:.0f} ms; medians over runs (range)"
    )
    ok = True
    for rtt, platform in ((r, p) for r in rtts for p in platforms):
        print(f"-- {platform}, platform round trip {rtt * 1000:.0f} ms", flush=True)
        with tempfile.TemporaryDirectory() as tmp:
            async with (
                remote_provider() as provider,
                rig_for(platform, provider.llm, Path(tmp), _channels(plan), rtt) as rig,
            ):
                for n, repeat in plan:
                    try:
                        results = [
                            await run(
                                rig, provider, n, count=TOKENS, first=FIRST_TOKEN, gap=TOKEN_GAP
                            )
                            for _ in range(repeat)
                        ]
                    except RuntimeError as exc:  # replies left unfinished: a miss, not a crash
                        row(f"{platform} x{n}: every reply finished", str(exc), "all", "MISSED")
                        ok = False
                        break  # the rig still holds those replies: the larger runs would lie
                    ok &= report(results)
    return ok


async def smoke() -> bool:
    """50 concurrent short streams (40 tokens, fast) per platform through the fakes and the bot
    process: every final text exact and zero 429s (correctness, not timings)."""
    print("Streaming smoke: 50 concurrent /chat streams of 40 tokens on Discord and Slack")
    ok = True
    for platform in ("discord", "slack"):
        with tempfile.TemporaryDirectory() as tmp:
            async with LLMFake() as llm, rig_for(platform, llm, Path(tmp), 50) as rig:
                result = await run(rig, Provider(llm), 50, count=40, first=0.02, gap=0.005)
        exact = sum(c.exact for c in result.conversations)
        good = exact == 50 and not result.rate_limited
        ok &= good
        counts = f"{len(result.rate_limited)} / {exact} of 50{_what(result.rate_limited)}"
        row(f"{platform} x50: 429s / exact final texts", counts, f"{result.wall:.1f} s",
            verdict(good))  # fmt: skip
    return ok


if __name__ == "__main__":
    sys.exit(0 if asyncio.run(main()) else 1)
