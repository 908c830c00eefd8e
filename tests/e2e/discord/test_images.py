"""/image on Discord through the real `python -m bot`, with the image providers faked over HTTP.

One bot process serves the module (OpenAI, Together and Imagen configured); each test uses its
own channel. Limits, breakers and restarts need their own processes: test_images_limits.py.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import pytest_asyncio

from tests.e2e.discord.conftest import BotProcess, Channels
from tests.e2e.discord.imaging import (
    acked_in_time,
    click,
    image_ids,
    images_env,
    notice,
    notice_of,
    quote,
    upload_calls,
    uploads,
    wait_uploads,
)
from tests.fakes.discord import FakeDiscord
from tests.fakes.discord.payloads import text_of
from tests.fakes.images.server import PNG, ImageFake

pytestmark = pytest.mark.asyncio(loop_scope="module")


@dataclass
class Shop:
    fake: FakeDiscord
    images: ImageFake
    bot: BotProcess
    channels: Channels


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def shop(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Shop]:
    tmp: Path = tmp_path_factory.mktemp("discord-images")
    async with FakeDiscord(channels=8) as fake, ImageFake() as images:
        env = images_env(fake, images, tmp, ("openai", "together", "google"))
        bot = await BotProcess(fake, env, tmp).start()
        try:
            yield Shop(fake, images, bot, Channels(fake))
        finally:
            await bot.stop()
            assert "Traceback" not in bot.logs(), bot.logs()[-3000:]


@pytest.fixture(autouse=True)
def _fresh_providers(shop: Shop) -> None:
    shop.images.reset()


async def test_quote_then_click_uploads_one_file_with_badges_and_cost(shop: Shop) -> None:
    fake, images, channel = shop.fake, shop.images, shop.channels.take()
    command, offer = await quote(fake, channel, "an artistic fox in the snow")
    assert command.ack_type == 5 and acked_in_time(command)
    assert "nothing is charged" in await notice(fake, command)  # private to the asker
    assert "(openai)" in text_of(offer) and "high quality" in text_of(offer)
    labels = [b["label"] for row in offer["components"] for b in row["components"]]
    assert labels[0] == "Generate for $0.0340" and labels[-1] == "Cancel"
    assert any("Imagen 4" in label and "$0.0400" in label for label in labels)  # alternatives
    quote_id = image_ids(fake, offer, "c")[0].split(":")[2]
    assert image_ids(fake, offer, "x") == [f"img:x:{quote_id}"]
    assert image_ids(fake, offer, "a")[0] == f"img:a:{quote_id}:0"
    assert images.calls == []  # a quote spends nothing

    inter = await click(fake, offer)
    (upload,) = await wait_uploads(fake, channel, 1)
    assert inter.ack_type == 5 and acked_in_time(inter)
    (call,) = upload_calls(fake, channel)
    assert call.headers["content-type"].startswith("multipart/form-data")
    assert call.parts == ["payload_json", "files[0]"]  # a file, never a link
    ((filename, data),) = call.files
    assert data == PNG and filename == f"parley-{quote_id}.png"
    assert upload["attachments"][0]["content_type"] == "image/png"
    text = text_of(upload)
    assert "(openai)" in text and "1024x1024" in text and "$0.0340" in text
    assert "fallback" not in text
    assert image_ids(fake, upload, "r") == [f"img:r:{quote_id}"]
    assert len(images.calls_to("openai")) == 1 and len(images.calls) == 1
    closed = await fake.wait_until(
        lambda: "✅" in text_of(fake.messages[offer["id"]]) and fake.messages[offer["id"]], 10
    )
    assert closed["components"] == []
    assert "✅ Generated with gpt-image-1.5 (openai) for $0.0340" in text_of(closed)
    await fake.wait_until(lambda: inter.original_id not in fake.messages, 10)  # no notice needed

    listing = await fake.slash("images", {}, channel=channel)
    text = await notice(fake, listing)
    assert "an artistic fox in the snow" in text and "$0.0340" in text and "openai" in text

    again = await click(fake, upload, "r")  # Regenerate: a new quote, nothing spent yet
    offers = await fake.wait_until(
        lambda: [m for m in fake.bot_messages(channel) if image_ids(fake, m, "c")], 20
    )
    assert acked_in_time(again) and image_ids(fake, offers[-1], "c") != [f"img:c:{quote_id}"]
    assert len(images.calls) == 1


async def test_double_click_and_racing_clicks_make_exactly_one_provider_call(shop: Shop) -> None:
    fake, images, channel = shop.fake, shop.images, shop.channels.take()
    _, offer = await quote(fake, channel, "an artistic owl")
    images.mode["openai"] = "slow"
    racing = await asyncio.gather(*(click(fake, offer) for _ in range(3)))
    await asyncio.wait_for(images.arrived("openai"), 20)
    losers = [await notice(fake, inter) for inter in racing[1:]]
    assert all("already being generated" in text for text in losers)
    images.release("openai")
    await wait_uploads(fake, channel, 1)
    late = await click(fake, offer) if image_ids(fake, fake.messages[offer["id"]], "c") else None
    if late is not None:  # the buttons may still show for a moment: a late double click
        assert "already generated" in await notice(fake, late)
    await asyncio.sleep(0.3)
    assert len(uploads(fake, channel)) == 1
    assert len(images.calls_to("openai")) == 1 and len(images.calls) == 1
    assert all(acked_in_time(inter) for inter in racing)


async def test_someone_elses_click_does_nothing_and_says_so_privately(shop: Shop) -> None:
    fake, images, channel = shop.fake, shop.images, shop.channels.take()
    _, offer = await quote(fake, channel, "an artistic badger")
    bob = await click(fake, offer, user="bob")
    assert "Only the person who asked" in await notice(fake, bob)
    bob_cancel = await click(fake, offer, "x", user="bob")
    assert "Only the person who asked can cancel" in await notice(fake, bob_cancel)
    assert fake.messages[offer["id"]]["components"] == offer["components"]  # untouched
    assert images.calls == []

    mine = await click(fake, offer, "x")
    assert "Cancelled; nothing was charged" in await notice(fake, mine)
    closed = await fake.wait_until(
        lambda: "Cancelled" in text_of(fake.messages[offer["id"]]) and fake.messages[offer["id"]]
    )
    assert closed["components"] == []
    assert images.calls == [] and uploads(fake, channel) == []


async def test_a_costlier_fallback_asks_again_before_spending(shop: Shop) -> None:
    fake, images, channel = shop.fake, shop.images, shop.channels.take()
    _, offer = await quote(fake, channel, "an artistic heron")
    assert "Generate for $0.0340" in str(offer["components"])
    images.mode["openai"] = images.mode["together"] = "fail"  # every option at or below $0.034
    inter = await click(fake, offer)
    text = await notice(fake, inter)
    assert "costs $0.0400" in text and "you confirmed $0.0340" in text
    assert images.calls_to("google") == []  # never called without a new confirmation
    new_offer = await fake.wait_until(
        lambda: next(
            (
                m
                for m in fake.bot_messages(channel)
                # the first offer lists Google at $0.0400 among its alternatives: skip it
                if m["id"] != offer["id"] and "$0.0400" in str(m["components"])
            ),
            None,
        ),
        20,
    )
    assert "(google)" in text_of(new_offer)
    closed = await fake.wait_until(
        lambda: (
            "price changed" in text_of(fake.messages[offer["id"]]) and fake.messages[offer["id"]]
        )
    )
    assert closed["components"] == []

    images.mode["openai"] = images.mode["together"] = "ok"
    await click(fake, new_offer)
    (upload,) = await wait_uploads(fake, channel, 1)
    assert "(google)" in text_of(upload) and "$0.0400" in text_of(upload)
    assert "fallback" not in text_of(upload)  # the new price was confirmed for google
    assert len(images.calls_to("google")) == 1


async def test_a_bad_prompt_is_refused_privately_and_nothing_is_posted(shop: Shop) -> None:
    fake, channel = shop.fake, shop.channels.take()
    inter = await fake.slash("image", {"prompt": "x" * 1001}, channel=channel)
    assert "too long" in await notice(fake, inter)
    assert fake.bot_messages(channel) == [] and notice_of(fake, inter) is not None
