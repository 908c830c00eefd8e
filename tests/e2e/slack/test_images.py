"""Images on Slack through the real `python -m bot`: /image quotes, signed clicks, file uploads,
caps, breakers and a crash mid-generation, against the Slack fake and the image-provider fake."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import aiohttp
import pytest_asyncio
from sqlalchemy import update
from sqlalchemy.ext.asyncio import create_async_engine

from bot.store.tables import image_jobs
from tests.e2e.slack.conftest import ALICE, BOB, CHANNEL, SlackBot, StartBot
from tests.fakes.images.server import ACCOUNT, PNG, PROVIDERS, ImageFake
from tests.fakes.slack import Message

HIGH = "an artistic fox"  # the high tier: OpenAI first at $0.034


@pytest_asyncio.fixture
async def images() -> AsyncIterator[ImageFake]:
    async with ImageFake() as fake:
        yield fake


def image_env(fake: ImageFake, only: tuple[str, ...] = PROVIDERS, **extra: str) -> dict[str, str]:
    """Every image provider pointed at the fake; those not in `only` unconfigured ("")."""
    k = fake.keys
    env = {
        "OPENAI_API_KEY": k["openai"],
        "OPENAI_BASE_URL": fake.base("openai"),
        "TOGETHER_API_KEY": k["together"],
        "TOGETHER_BASE_URL": fake.base("together"),
        "REPLICATE_API_TOKEN": k["replicate"],
        "REPLICATE_BASE_URL": fake.base("replicate"),
        "CLOUDFLARE_ACCOUNT_ID": ACCOUNT,
        "CLOUDFLARE_API_TOKEN": k["workers-ai"],
        "CLOUDFLARE_API_BASE_URL": fake.base("workers-ai"),
        "GOOGLE_API_KEY": k["google"],
        "GOOGLE_BASE_URL": fake.base("google"),
    }
    secrets = {
        "openai": "OPENAI_API_KEY",
        "together": "TOGETHER_API_KEY",
        "replicate": "REPLICATE_API_TOKEN",
        "workers-ai": "CLOUDFLARE_API_TOKEN",
        "google": "GOOGLE_API_KEY",
    }
    for provider, name in secrets.items():
        if provider not in only:
            env[name] = ""
    return env | extra


def _image_buttons(message: Message) -> list[dict[str, Any]]:
    return [b for b in message.buttons() if str(b.get("action_id", "")).startswith("img:")]


def button(message: Message, verb: str) -> dict[str, Any]:
    return next(b for b in _image_buttons(message) if b["action_id"].startswith(f"img:{verb}:"))


def quotes(bot: SlackBot, thread: str | None = None) -> list[Message]:
    """Messages that offer a price (a Generate button), oldest first."""
    pool = bot.fake.thread(CHANNEL, thread) if thread else bot.fake.bot_replies(CHANNEL, None)
    found = [m for m in pool if any(b["action_id"].startswith("img:c:") for b in m.buttons())]
    return sorted(found, key=lambda m: m.ts)


async def ask(bot: SlackBot, prompt: str = HIGH, user: str = ALICE) -> Message:
    """/image, then the quote it posts in the channel."""
    # By the newest quote's ts: a quote settling meanwhile leaves the offers, so a count of them
    # could stand still while a new one arrives.
    seen = {m.ts for m in quotes(bot)}
    sent = await bot.sender.command("/image", prompt, user=user, channel=CHANNEL)
    assert sent.status == 200 and sent.elapsed < 3.0
    await bot.fake.wait_for(lambda: any(m.ts not in seen for m in quotes(bot)), 20)
    return next(m for m in reversed(quotes(bot)) if m.ts not in seen)


async def click(bot: SlackBot, message: Message, verb: str = "c", user: str = ALICE) -> None:
    sent = await bot.sender.click(
        button(message, verb),
        user=user,
        channel=CHANNEL,
        message_ts=message.ts,
        thread_ts=message.thread_ts,
    )
    assert sent.status == 200 and sent.elapsed < 3.0


async def notes_for(bot: SlackBot, user: str, count: int) -> list[str]:
    def mine() -> list[str]:
        return [e.text for e in bot.fake.ephemerals if e.user == user]

    await bot.fake.wait_for(lambda: len(mine()) >= count, 20)
    return mine()


async def wait_files(bot: SlackBot, count: int) -> None:
    await bot.fake.wait_for(lambda: len(bot.fake.files) >= count, 30)


async def health(bot: SlackBot) -> dict[str, Any]:
    url = f"http://127.0.0.1:{bot.port}/health-check/image-providers"
    async with aiohttp.ClientSession() as session, session.get(url) as response:
        body: dict[str, Any] = await response.json()
        return body


def settled_line(message: Message) -> str:
    contexts = [b for b in message.blocks if b.get("type") == "context"]
    return str(contexts[-1]["elements"][0]["text"]) if contexts else ""


async def test_quote_then_click_uploads_one_file_and_every_click_counts_once(
    images: ImageFake, start_bot: StartBot
) -> None:
    bot = await start_bot(**image_env(images, IMAGES_PER_HOUR="2"))
    fake = bot.fake
    quote = await ask(bot)
    labels = [b["text"]["text"] for b in _image_buttons(quote)]
    assert labels[0] == "Generate for $0.0340" and labels[-1] == "Cancel" and len(labels) > 2
    assert "Image quote" in quote.text and images.calls == []  # quoting spends nothing

    await click(bot, quote, user=BOB)  # someone else's click
    [note] = await notes_for(bot, BOB, 1)
    assert note == "Only the person who asked for this image can confirm it."
    assert images.calls == []

    await click(bot, quote)
    await click(bot, quote)  # a double click
    await wait_files(bot, 1)
    notes = await notes_for(bot, ALICE, 1)
    assert "already" in notes[0]
    [file] = fake.files
    assert file.data == PNG and file.filename.endswith(".png") and file.length == len(PNG)
    assert file.channel == CHANNEL and file.thread_ts == quote.ts  # in the quote's thread
    caption = file.initial_comment or ""
    assert "(openai)" in caption and "1024x1024" in caption and "$0.0340" in caption
    assert "fallback" not in caption
    assert fake.messages[(CHANNEL, str(file.message_ts))].files == [file.id]
    await fake.wait_for(lambda: settled_line(fake.messages[(CHANNEL, quote.ts)]))
    settled = fake.messages[(CHANNEL, quote.ts)]
    assert settled_line(settled).startswith("✅ Generated with") and "$0.0340" in settled.text
    assert [b["text"]["text"] for b in _image_buttons(settled)] == ["Regenerate"]

    racing = await ask(bot, "an artistic owl")
    await asyncio.gather(click(bot, racing), click(bot, racing))  # two signed requests at once
    await wait_files(bot, 2)
    notes = await notes_for(bot, ALICE, 2)
    assert "already" in notes[1]
    capped = await ask(bot, "an artistic cat")
    await click(bot, capped)
    notes = await notes_for(bot, ALICE, 3)
    assert "last hour" in notes[2] and "Nothing was charged" in notes[2]
    assert len(images.calls_to("openai")) == 2 and len(images.calls) == 2
    assert len(fake.files) == 2

    await bot.sender.command("/images", "", user=ALICE, channel=CHANNEL)
    await fake.wait_for(
        lambda: any(r.posts for r in fake.response_urls.values() if r.user == ALICE)
    )
    [listing] = [r.posts[0] for r in fake.response_urls.values() if r.posts]
    assert listing["response_type"] == "ephemeral"
    assert "an artistic fox" in listing["text"] and "an artistic owl" in listing["text"]
    assert "an artistic cat" not in listing["text"]  # never generated


async def test_an_expired_quote_generates_nothing(images: ImageFake, start_bot: StartBot) -> None:
    bot = await start_bot(**image_env(images, IMAGE_QUOTE_TTL_SECONDS="1"))
    quote = await ask(bot)
    await asyncio.sleep(1.3)
    await click(bot, quote)
    [note] = await notes_for(bot, ALICE, 1)
    assert "expired" in note
    await bot.fake.wait_for(lambda: settled_line(bot.fake.messages[(CHANNEL, quote.ts)]))
    assert settled_line(bot.fake.messages[(CHANNEL, quote.ts)]).startswith("⌛")
    assert images.calls == [] and bot.fake.files == []


async def test_an_open_breaker_falls_back_with_a_badge_and_one_probe_goes_through_later(
    images: ImageFake, start_bot: StartBot
) -> None:
    timeout = 4.0
    bot = await start_bot(**image_env(images, CIRCUIT_BREAKER_TIMEOUT_MS=str(int(timeout * 1000))))
    fake = bot.fake
    offered = [await ask(bot, f"{HIGH} {i}") for i in range(6)]
    images.mode["openai"] = "fail"
    for n, quote in enumerate(offered, 1):
        await click(bot, quote)
        await wait_files(bot, n)
    opened = time.monotonic()
    assert len(images.calls_to("openai")) == 5  # the sixth click did not try the open provider
    assert len(images.calls_to("replicate")) == 6
    for file in fake.files:
        caption = file.initial_comment or ""
        assert "(replicate)" in caption and "fallback used" in caption
    report = await health(bot)
    assert report["providers"]["openai"]["circuitBreakerState"] == "OPEN"
    assert report["providers"]["openai"]["available"] is False
    assert report["summary"]["unavailable"] == 1

    await asyncio.sleep(max(0.0, timeout + 0.3 - (time.monotonic() - opened)))
    images.mode["openai"] = "slow"
    racing = [await ask(bot, f"{HIGH} again {i}") for i in range(4)]
    assert all("(openai)" in m.text or "OpenAI" in m.text or "GPT" in m.text for m in racing)
    await click(bot, racing[0])
    await asyncio.wait_for(images.arrived("openai"), 20)  # the one probe, held
    await asyncio.gather(*(click(bot, m) for m in racing[1:]))
    await wait_files(bot, 9)
    assert len(images.calls_to("openai")) == 6  # only the probe reached the half-open provider
    assert all("fallback used" in (f.initial_comment or "") for f in fake.files[6:9])
    images.release("openai")
    await wait_files(bot, 10)
    probe = fake.files[9].initial_comment or ""
    assert "(openai)" in probe and "fallback" not in probe
    assert (await health(bot))["providers"]["openai"]["circuitBreakerState"] == "CLOSED"


async def test_a_dearer_fallback_asks_again(images: ImageFake, start_bot: StartBot) -> None:
    bot = await start_bot(**image_env(images, only=("openai", "google")))
    fake = bot.fake
    quote = await ask(bot)
    images.mode["openai"] = "fail"
    await click(bot, quote)
    await fake.wait_for(lambda: quotes(bot, quote.ts), 20)
    [again] = quotes(bot, quote.ts)
    assert button(again, "c")["text"]["text"] == "Generate for $0.0400"
    [note] = await notes_for(bot, ALICE, 1)
    assert "Confirm the new price" in note
    assert images.calls_to("google") == [] and fake.files == []
    await fake.wait_for(lambda: settled_line(fake.messages[(CHANNEL, quote.ts)]))
    assert settled_line(fake.messages[(CHANNEL, quote.ts)]).startswith("↪️")

    await click(bot, again)
    await wait_files(bot, 1)
    caption = fake.files[0].initial_comment or ""
    assert "(google)" in caption and "$0.0400" in caption and "fallback" not in caption
    assert fake.files[0].thread_ts == quote.ts
    assert len(images.calls_to("google")) == 1


async def test_a_crash_between_click_and_delivery_is_unknown_after_restart_and_not_retried(
    images: ImageFake, start_bot: StartBot
) -> None:
    env = image_env(images, only=("openai", "google"))
    first = await start_bot(**env)
    quote = await ask(first)
    images.mode["openai"] = "slow"
    generate = button(quote, "c")  # the quote object changes as the fake updates it
    await click(first, quote)
    await asyncio.wait_for(images.arrived("openai"), 20)
    await first.kill()
    # The job's lease (IMAGE_JOB_TIMEOUT_SECONDS + 60 s) runs out while the bot is down.
    engine = create_async_engine(f"sqlite+aiosqlite:///{first.log.parent / 'parley.db'}")
    async with engine.begin() as conn:
        past = datetime(2000, 1, 1, tzinfo=UTC)
        await conn.execute(update(image_jobs).values(lease_until=past))
    await engine.dispose()

    images.mode["openai"] = "ok"
    second = await start_bot(**env)
    assert "marked unknown" in second.output()
    fake = second.fake

    # Once connected, the adapter tells the requester in the quote's thread, unasked, and the
    # quote shows ❓ instead of its buttons.
    def notices() -> list[Message]:
        return [m for m in fake.bot_replies(CHANNEL, quote.ts) if "interrupted" in m.text]

    await fake.wait_for(lambda: notices() and settled_line(fake.messages[(CHANNEL, quote.ts)]))
    [notice] = notices()
    assert notice.text.startswith(f"⚠️ <@{ALICE}> the image for “{HIGH}”")
    assert "may have been charged" in notice.text and "not retried" in notice.text
    settled = fake.messages[(CHANNEL, quote.ts)]
    assert settled_line(settled).startswith("❓") and _image_buttons(settled) == []
    assert len(images.calls_to("openai")) == 1  # the notice called no provider

    # A client that still shows the old buttons can click Generate: nothing is retried.
    sent = await second.sender.click(
        generate, user=ALICE, channel=CHANNEL, message_ts=quote.ts, thread_ts=None
    )
    assert sent.status == 200
    [note] = await notes_for(second, ALICE, 1)
    assert "unknown" in note and "not retried" in note
    assert settled_line(fake.messages[(CHANNEL, quote.ts)]).startswith("❓")
    await second.sender.command("/images", "", user=ALICE, channel=CHANNEL)
    await fake.wait_for(lambda: any(r.posts for r in fake.response_urls.values()))
    [listing] = [r.posts[0] for r in fake.response_urls.values() if r.posts]
    assert "unknown" in listing["text"]
    assert len(images.calls_to("openai")) == 1 and images.calls_to("google") == []
    assert fake.files == [] and len(notices()) == 1  # the click did not notify again


async def test_what_slack_refuses_to_post_is_said_truthfully(
    images: ImageFake, start_bot: StartBot
) -> None:
    """A quote Slack will not post costs nothing and says so; an image made but refused by Slack
    may have been charged, so the note points at /images instead of claiming nothing was."""
    bot = await start_bot(**image_env(images))
    fake = bot.fake
    fake.inject("chat.postMessage", "not_in_channel", http_429=False)
    before = set(fake.response_urls)
    sent = await bot.sender.command("/image", HIGH, user=ALICE, channel=CHANNEL)
    assert sent.status == 200
    [rid] = set(fake.response_urls) - before
    await fake.wait_for(lambda: fake.response_urls[rid].posts, 20)
    assert fake.response_urls[rid].posts[0]["text"] == (
        "Sorry, I couldn't post the quote here. Nothing was charged."
        " Invite me first: `/invite @Parley`."
    )
    assert images.calls == []

    quote = await ask(bot)
    fake.inject("files.completeUploadExternal", "not_in_channel", http_429=False)
    await click(bot, quote)
    notes = await notes_for(bot, ALICE, 1)
    assert notes[-1] == (
        "Sorry, I couldn't post the result here. `/images` lists what was made and charged."
    )
    assert len(images.calls) == 1 and fake.files == []
