"""Image money is bound to (platform, guild, user) on Discord, through the real `python -m bot`:
a click that Discord sends from another guild acts on nothing of this guild, even though a
Discord user id is the same in every guild."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.e2e.discord.conftest import BotProcess
from tests.e2e.discord.imaging import click, image_ids, images_env, notice_of, quote, wait_uploads
from tests.fakes.discord import FakeDiscord
from tests.fakes.images.server import ImageFake

UNKNOWN_QUOTE = "That quote no longer exists."
UNKNOWN_IMAGE = "That image is no longer known."


async def outcome(
    fake: FakeDiscord, images: ImageFake, message: dict[str, Any], custom_id: str, user: str
) -> str | None:
    """Click, then the click's private notice. Waiting stops too when an image provider is
    called or the bot posts instead, so the old behaviour fails the assertions, not a timeout."""
    calls, posted = len(images.calls), posts(fake, *fake.channels)
    inter = await fake.click(message["id"], custom_id, user=user)

    def done() -> object:
        moved = len(images.calls) > calls or posts(fake, *fake.channels) > posted
        return notice_of(fake, inter) or moved

    await fake.wait_until(done, 20, what="a notice")
    return notice_of(fake, inter)


def posts(fake: FakeDiscord, *channels: str) -> int:
    """How many channel messages (quotes, images) the bot has posted in `channels`."""
    return sum(len(fake.bot_messages(c)) for c in channels)


async def test_a_click_from_another_guild_on_this_guilds_quote_spends_nothing(
    tmp_path: Path,
) -> None:
    async with FakeDiscord(channels=1) as fake, ImageFake() as images:
        other = fake.add_guild("Other Guild", channels=1)
        here, there = fake.channel_ids[0], other.channels[0]
        env = images_env(fake, images, tmp_path, ("openai", "together", "google"))
        bot = await BotProcess(fake, env, tmp_path).start()
        try:
            _, offer = await quote(fake, here, "an artistic fox")
            quote_id = image_ids(fake, offer, "c")[0].split(":")[2]
            # A bot message in the other guild (alice's own quote there) that shows this
            # guild's quote ids: Discord sends its clicks with the other guild's id.
            _, elsewhere = await quote(fake, there, "an artistic owl")
            rows = bot.rows("SELECT id, tenant_id, user_id, status FROM image_jobs ORDER BY id")
            alice = fake.users["alice"]["id"]
            assert {(r["tenant_id"], r["user_id"]) for r in rows} == {
                (f"discord:{fake.guild.id}", alice),
                (f"discord:{other.id}", alice),
            }  # each quote in the guild of its /image
            fake.set_buttons(
                elsewhere["id"], f"img:c:{quote_id}", f"img:a:{quote_id}:0", f"img:x:{quote_id}"
            )
            for custom_id in fake.custom_ids(fake.messages[elsewhere["id"]]):
                assert await outcome(fake, images, elsewhere, custom_id, "alice") == UNKNOWN_QUOTE
            assert images.calls == []
            [mine] = bot.rows("SELECT status, claimed_at FROM image_jobs WHERE id = ?", quote_id)
            assert (mine["status"], mine["claimed_at"]) == ("quoted", None)  # not even cancelled

            await click(fake, offer)  # in its own guild, the requester's click generates it
            (upload,) = await wait_uploads(fake, here, 1)
            assert image_ids(fake, upload, "r") == [f"img:r:{quote_id}"]
            fake.set_buttons(elsewhere["id"], f"img:r:{quote_id}")
            before = posts(fake, *fake.channels)
            regenerate = f"img:r:{quote_id}"
            assert await outcome(fake, images, elsewhere, regenerate, "alice") == UNKNOWN_IMAGE
            # This guild, but not the requester:
            assert await outcome(fake, images, upload, regenerate, "bob") == (
                "Only the person who asked for this image can regenerate it."
            )
            assert posts(fake, *fake.channels) == before  # no new quote anywhere
            assert len(bot.rows("SELECT id FROM image_jobs")) == 2
            assert len(images.calls) == 1
        finally:
            await bot.stop()
        assert "Traceback" not in bot.logs(), bot.logs()[-3000:]
