"""Image money is bound to (platform, tenant, user) on Slack, through the real `python -m bot`:
signed clicks from another workspace (team T0002) on T0001's quotes and images create, spend and
reveal nothing, even when the clicker's user id equals the T0001 requester's."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest_asyncio
from sqlalchemy import select
from sqlalchemy.ext.asyncio import create_async_engine

from bot.store.tables import image_jobs, usage_ledger
from tests.e2e.slack.conftest import ALICE, BOB, CHANNEL, SECRET, TEAM, SlackBot, StartBot
from tests.e2e.slack.test_images import ask, button, image_env, quotes, settled_line, wait_files
from tests.fakes.images.server import ImageFake
from tests.fakes.slack import Message, SlackSender

OTHER_TEAM = "T0002"
MALLORY = "U0MALLORY"  # a member of T0002 only
UNKNOWN_QUOTE = "That quote no longer exists."
UNKNOWN_IMAGE = "That image is no longer known."


@pytest_asyncio.fixture
async def images() -> AsyncIterator[ImageFake]:
    async with ImageFake() as fake:
        yield fake


async def click(sender: SlackSender, message: Message, verb: str, user: str) -> None:
    """A signed click on the quote's `img:<verb>:` button, from the sender's workspace."""
    sent = await sender.click(
        button(message, verb),
        user=user,
        channel=CHANNEL,
        message_ts=message.ts,
        thread_ts=message.thread_ts,
    )
    assert sent.status == 200 and sent.elapsed < 3.0


def notes(bot: SlackBot, user: str) -> list[str]:
    return [e.text for e in bot.fake.ephemerals if e.user == user]


def posts(bot: SlackBot) -> int:
    """How many messages the bot has posted (quotes, images, notices), anywhere."""
    return sum(m.is_bot for m in bot.fake.messages.values())


async def answered(
    bot: SlackBot, images: ImageFake, sender: SlackSender, message: Message, verb: str, user: str
) -> str:
    """Click, then the clicker's next ephemeral. Waiting stops too when a post or an image call
    comes instead, so the old behaviour fails the assertions rather than a timeout."""
    before, posted, calls = len(notes(bot, user)), posts(bot), len(images.calls)
    await click(sender, message, verb, user)

    def done() -> bool:
        return len(notes(bot, user)) > before or posts(bot) > posted or len(images.calls) > calls

    await bot.fake.wait_for(done, 20)
    mine = notes(bot, user)
    return mine[before] if len(mine) > before else ""


async def rows(bot: SlackBot) -> tuple[list[Any], list[Any]]:
    """Every image job and usage-ledger row in the bot's database."""
    engine = create_async_engine(f"sqlite+aiosqlite:///{bot.log.parent / 'parley.db'}")
    try:
        async with engine.connect() as conn:
            jobs = (await conn.execute(select(image_jobs))).all()
            ledger = (await conn.execute(select(usage_ledger))).all()
    finally:
        await engine.dispose()
    return list(jobs), list(ledger)


async def test_another_workspace_cannot_regenerate_an_image_into_this_workspaces_bill(
    images: ImageFake, start_bot: StartBot
) -> None:
    bot = await start_bot(**image_env(images))
    fake = bot.fake
    quote = await ask(bot)
    job_id = quote_id(quote)
    await click(bot.sender, quote, "c", ALICE)
    await wait_files(bot, 1)
    await fake.wait_for(lambda: settled_line(fake.messages[(CHANNEL, quote.ts)]))
    generated = fake.messages[(CHANNEL, quote.ts)]  # now offers Regenerate (img:r:<job>)
    assert button(generated, "r")["action_id"] == f"img:r:{job_id}"
    assert len(images.calls) == 1
    posted = posts(bot)

    async with SlackSender(bot.events_url, SECRET, fake, team=OTHER_TEAM) as other:
        for user in (MALLORY, ALICE):  # ALICE here is T0002's user who happens to share the id
            assert await answered(bot, images, other, generated, "r", user) == UNKNOWN_IMAGE

    # The same workspace, but not the requester:
    assert await answered(bot, images, bot.sender, generated, "r", BOB) == (
        "Only the person who asked for this image can regenerate it."
    )
    assert posts(bot) == posted and quotes(bot, quote.ts) == []  # no quote was posted
    assert len(images.calls) == 1 and len(fake.files) == 1
    jobs, _ = await rows(bot)
    assert [(j.id, j.tenant_id, j.status) for j in jobs] == [(job_id, f"slack:{TEAM}", "succeeded")]

    await click(bot.sender, generated, "r", ALICE)  # the requester still can
    await fake.wait_for(lambda: quotes(bot, quote.ts), 20)
    jobs, _ = await rows(bot)
    assert len(jobs) == 2 and {(j.tenant_id, j.user_id) for j in jobs} == {(f"slack:{TEAM}", ALICE)}
    assert len(images.calls) == 1  # a new quote only


async def test_a_same_id_user_of_another_workspace_cannot_confirm_or_cancel_a_quote(
    images: ImageFake, start_bot: StartBot
) -> None:
    bot = await start_bot(**image_env(images))
    fake = bot.fake
    quote = await ask(bot)
    offered = _image_buttons(quote)
    async with SlackSender(bot.events_url, SECRET, fake, team=OTHER_TEAM) as other:
        for verb in ("c", "a", "x"):  # Generate, an alternative, Cancel
            assert await answered(bot, images, other, quote, verb, ALICE) == UNKNOWN_QUOTE
        assert images.calls == [] and fake.files == []
        jobs, ledger = await rows(bot)
        assert [(j.status, j.claimed_at) for j in jobs] == [("quoted", None)] and ledger == []
        assert _image_buttons(fake.messages[(CHANNEL, quote.ts)]) == offered  # not settled

        # A quote asked for in T0002 is T0002's: bound to the workspace of its command.
        await other.command("/image", "an artistic heron", user=MALLORY, channel=CHANNEL)
        await fake.wait_for(lambda: len(quotes(bot)) == 2, 20)
    jobs, _ = await rows(bot)
    assert sorted((j.tenant_id, j.user_id) for j in jobs) == [
        (f"slack:{TEAM}", ALICE),
        (f"slack:{OTHER_TEAM}", MALLORY),
    ]

    await click(bot.sender, quote, "c", ALICE)  # untouched: T0001's ALICE still generates it
    await wait_files(bot, 1)
    assert len(images.calls) == 1
    _, ledger = await rows(bot)
    assert [(r.tenant_id, r.user_id) for r in ledger] == [(f"slack:{TEAM}", ALICE)]


def quote_id(message: Message) -> str:
    return str(button(message, "c")["action_id"]).split(":")[2]


def _image_buttons(message: Message) -> list[str]:
    return [b["action_id"] for b in message.buttons() if b["action_id"].startswith("img:")]
