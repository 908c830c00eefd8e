"""/image limits, breakers and restarts through the real `python -m bot`: each test needs its own
settings (or kills the process), so each starts its own bot."""

from __future__ import annotations

import asyncio
import socket
import sqlite3
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import closing
from pathlib import Path
from typing import Any

import aiohttp
import pytest_asyncio

from tests.e2e.discord.conftest import BotProcess
from tests.e2e.discord.imaging import (
    click,
    health,
    images_env,
    notice,
    quote,
    uploads,
    wait_uploads,
)
from tests.fakes.discord import FakeDiscord
from tests.fakes.discord.payloads import snowflake, text_of
from tests.fakes.images.server import ImageFake

StartBot = Callable[..., Awaitable[BotProcess]]


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest_asyncio.fixture
async def image_fake() -> AsyncIterator[ImageFake]:
    async with ImageFake() as fake:
        yield fake


@pytest_asyncio.fixture
async def start_bot(
    discord_fake: FakeDiscord, image_fake: ImageFake, tmp_path: Path
) -> AsyncIterator[StartBot]:
    started: list[BotProcess] = []

    async def start(**env: str) -> BotProcess:
        only = tuple(env.pop("PROVIDERS", "openai,together").split(","))
        bot = BotProcess(discord_fake, images_env(discord_fake, image_fake, tmp_path, only, **env),
                         tmp_path)  # fmt: skip
        started.append(bot)
        return await bot.start()

    yield start
    for bot in started:
        await bot.stop()
        assert "Traceback" not in bot.logs(), bot.logs()[-3000:]


async def test_caps_refuse_before_any_provider_call_and_expired_quotes_generate_nothing(
    discord_fake: FakeDiscord, image_fake: ImageFake, start_bot: StartBot
) -> None:
    fake, channel = discord_fake, discord_fake.channel_ids[0]
    await start_bot(IMAGES_PER_HOUR="1", DAILY_COST_LIMIT_USD="0.03", IMAGE_QUOTE_TTL_SECONDS="3")
    _, stale = await quote(fake, channel, "a red fox")
    stale_posted = time.monotonic()  # the quote was stored before its offer was posted
    _, first = await quote(fake, channel, "a red fox")  # standard tier: $0.0027
    _, second = await quote(fake, channel, "a grey wolf")
    await click(fake, first)
    await wait_uploads(fake, channel, 1)
    refused = await click(fake, second)
    text = await notice(fake, refused)
    assert "in the last hour (limit 1)" in text and "Nothing was charged" in text
    assert fake.messages[second["id"]]["components"] != []  # the quote stays for later
    _, dear = await quote(fake, channel, "an artistic crane", user="bob")  # $0.034 > $0.03
    over = await click(fake, dear, user="bob")
    assert "$0.0300 limit" in await notice(fake, over)
    assert len(image_fake.calls) == 1

    await asyncio.sleep(max(3.1 - (time.monotonic() - stale_posted), 0))
    late = await click(fake, stale)
    assert "expired" in await notice(fake, late)
    closed = await fake.wait_until(
        lambda: "expired" in text_of(fake.messages[stale["id"]]) and fake.messages[stale["id"]]
    )
    assert closed["components"] == []
    assert len(image_fake.calls) == 1 and len(uploads(fake, channel)) == 1


async def test_five_failures_open_the_breaker_then_one_probe_goes_through_after_the_timeout(
    discord_fake: FakeDiscord, image_fake: ImageFake, start_bot: StartBot
) -> None:
    fake, images, port = discord_fake, image_fake, free_port()
    await start_bot(PORT=str(port), HOST="127.0.0.1", CIRCUIT_BREAKER_TIMEOUT_MS="3000")
    channel = fake.channel_ids[0]
    offers = [(await quote(fake, channel, f"an artistic fox {i}"))[1] for i in range(6)]
    assert all("(openai)" in text_of(o) for o in offers)
    async with (  # the gateway is connected: /readyz counts the platform as ready
        aiohttp.ClientSession() as session,
        session.get(f"http://127.0.0.1:{port}/readyz") as response,
    ):
        assert response.status == 200
        assert (await response.json())["checks"] == {"store": True, "discord": True}
    images.mode["openai"] = "fail"
    for n, offer in enumerate(offers[:5], start=1):
        await click(fake, offer)
        await wait_uploads(fake, channel, n)
    opened_at = time.monotonic()
    await click(fake, offers[5])
    done = await wait_uploads(fake, channel, 6)
    report = await health(port)
    assert len(images.calls_to("openai")) == 5  # the sixth click did not try the open provider
    for upload in done:
        assert "(together)" in text_of(upload)
        assert "fallback used (instead of GPT Image 1.5 (medium))" in text_of(upload)
        assert "$0.0154" in text_of(upload)
    openai = report["providers"]["openai"]
    assert openai["circuitBreakerState"] == "OPEN" and openai["available"] is False
    assert openai["reason"] == "circuit breaker open"
    assert report["summary"]["unavailable"] == 4  # openai open; three never configured
    assert time.monotonic() - opened_at < 3.0, "too slow to observe OPEN; raise the timeout"

    await asyncio.sleep(max(3.1 - (time.monotonic() - opened_at), 0))
    images.mode["openai"] = "slow"
    channel = fake.channel_ids[1]
    racing = [(await quote(fake, channel, f"an artistic owl {i}"))[1] for i in range(3)]
    assert all("(openai)" in text_of(o) for o in racing)  # half-open counts as available
    await click(fake, racing[0])
    await asyncio.wait_for(images.arrived("openai"), 20)
    for offer in racing[1:]:
        await click(fake, offer)
    others = await wait_uploads(fake, channel, 2)
    assert all("fallback used" in text_of(u) for u in others)
    assert len(images.calls_to("openai")) == 6  # exactly one probe
    images.release("openai")
    probe = (await wait_uploads(fake, channel, 3))[-1]
    assert "(openai)" in text_of(probe) and "fallback" not in text_of(probe)
    assert (await health(port))["providers"]["openai"]["circuitBreakerState"] == "CLOSED"


async def test_a_restart_between_click_and_delivery_leaves_the_job_unknown_and_not_retried(
    discord_fake: FakeDiscord, image_fake: ImageFake, start_bot: StartBot
) -> None:
    fake, images, channel = discord_fake, image_fake, discord_fake.channel_ids[0]
    bot = await start_bot(IMAGE_JOB_TIMEOUT_SECONDS="10")
    thread = (await fake.create_thread(snowflake(), channel, {"name": "owls"}))["id"]
    _, offer = await quote(fake, channel, "an artistic lynx")
    quote_id = offer["components"][0]["components"][0]["custom_id"].split(":")[2]
    owl_prompt = "a  snowy\nowl " + "very " * 30 + "END"  # notices trim and flatten prompts
    _, owl = await quote(fake, thread, owl_prompt, user="bob", provider="together")
    owl_id = owl["components"][0]["components"][0]["custom_id"].split(":")[2]
    images.mode["openai"] = images.mode["together"] = "slow"
    await click(fake, offer)
    await click(fake, owl, user="bob")
    await asyncio.wait_for(images.arrived("openai"), 20)
    await asyncio.wait_for(images.arrived("together"), 20)
    await bot.kill()  # the process dies while the provider is working on it
    (row,) = bot.rows("SELECT status FROM image_jobs WHERE id = ?", quote_id)
    assert row["status"] == "generating"
    (row,) = bot.rows("SELECT status, thread_id FROM image_jobs WHERE id = ?", owl_id)
    assert row["status"] == "generating" and row["thread_id"] == thread
    # Its lease (job timeout + 60 s) guards against declaring another replica's job dead; let it
    # run out rather than wait 70 s.
    with closing(sqlite3.connect(bot.db, timeout=10, isolation_level=None)) as conn:
        conn.execute(
            "UPDATE image_jobs SET lease_until = '2000-01-01 00:00:00.000000' WHERE id IN (?, ?)",
            (quote_id, owl_id),
        )
    images.mode["openai"] = images.mode["together"] = "ok"
    sent_before = len(fake.calls_to("message.create"))
    await bot.start()
    (row,) = bot.rows("SELECT status, detail FROM image_jobs WHERE id = ?", quote_id)
    assert row["status"] == "unknown" and "stopped" in row["detail"]

    # Once connected, the bot tells each requester where they asked: the channel, the thread.
    def interrupted(where: str) -> list[dict[str, Any]]:
        return [m for m in fake.bot_messages(where) if "interrupted" in text_of(m)]

    await fake.wait_until(lambda: interrupted(channel) and interrupted(thread), 20, what="notices")
    alice, bob = fake.users["alice"]["id"], fake.users["bob"]["id"]
    (lynx_notice,) = interrupted(channel)
    assert text_of(lynx_notice).startswith(f"⚠️ <@{alice}> the image for “an artistic lynx”")
    assert "outcome is unknown (it may have been charged), so it was not retried" in (
        text_of(lynx_notice)
    )
    (owl_notice,) = interrupted(thread)
    assert f"<@{bob}>" in text_of(owl_notice) and f"<@{alice}>" not in text_of(owl_notice)
    assert "“a snowy owl very very" in text_of(owl_notice)
    assert "END" not in text_of(owl_notice) and "…”" in text_of(owl_notice)
    pings = {
        c.params["channel"]: (c.body or {}).get("allowed_mentions")
        for c in fake.calls_to("message.create")[sent_before:]
    }
    assert pings == {  # only the requester is pinged, and nothing else was posted on start-up
        channel: {"parse": [], "users": [int(alice)]},
        thread: {"parse": [], "users": [int(bob)]},
    }

    again = await click(fake, offer)  # the dead process never closed the quote's buttons
    text = await notice(fake, again)
    assert "outcome is unknown" in text and "not retried" in text
    closed = await fake.wait_until(
        lambda: "unknown" in text_of(fake.messages[offer["id"]]) and fake.messages[offer["id"]]
    )
    assert closed["components"] == []
    listing = await fake.slash("images", {}, channel=channel)
    assert "unknown · an artistic lynx" in await notice(fake, listing)
    await asyncio.sleep(0.3)
    assert len(images.calls_to("openai")) == 1 and uploads(fake, channel) == []
    assert len(images.calls_to("together")) == 1 and uploads(fake, thread) == []
    assert len(interrupted(channel)) == 1 and len(interrupted(thread)) == 1
