"""Bad input on Slack gets a clear answer, through one real `python -m bot` for the module.

Numbers are ASCII digits in range (`²`, `٣` and 30-digit pages are refused with the command's
usage). Nothing of it leaves a traceback in the log.
"""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio

from tests.e2e.slack.conftest import SlackBot, launch_bot, stop_bot
from tests.e2e.slack.helpers import ask, ephemerals_to, run_command
from tests.fakes.llm_server import LLMFake, workers_stream
from tests.fakes.slack import SlackFake

pytestmark = pytest.mark.asyncio(loop_scope="module")

ADMIN = "U0INADMIN"
_users = itertools.count()


def user() -> str:
    return f"U0IN{next(_users):04d}"


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def bot(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[SlackBot]:
    tmp = tmp_path_factory.mktemp("slack-inputs")
    async with SlackFake() as fake, LLMFake() as llm:
        bot = await launch_bot(llm, fake, tmp, SLACK_ADMIN_USERS=ADMIN)
        try:
            yield bot
        finally:
            await stop_bot(bot)
            assert "Traceback" not in bot.output(), bot.output()[-3000:]


@pytest.mark.parametrize("page", ["²", "٣", "0", "1" * 30, "+2", " 2_0", "-1"])
async def test_history_pages_are_ascii_numbers_in_range(bot: SlackBot, page: str) -> None:
    answer = await run_command(bot, "/history", page, user=user(), channel="C0HISTORY")
    assert answer["text"] == "Usage: `/history [page]`, a page number from 1 to 10,000."


async def test_history_page_ten_thousand_is_a_page(bot: SlackBot) -> None:
    answer = await run_command(bot, "/history", "10000", user=user(), channel="C0HISTORY")
    assert answer["text"] == "Your conversations, page 10000"


@pytest.mark.parametrize(
    ("option", "refusal"),
    [
        ("seed:²", "`seed` must be a whole number from 0 to 4294967295."),
        ("seed:4294967296", "`seed` must be a whole number from 0 to 4294967295."),
        ("steps:٢٠", "`steps` must be a whole number from 1 to 1000."),
        ("steps:" + "9" * 30, "`steps` must be a whole number from 1 to 1000."),
    ],
)
async def test_image_seed_and_steps_are_ascii_numbers_in_range(
    bot: SlackBot, option: str, refusal: str
) -> None:
    answer = await run_command(bot, "/image", f"a fox {option}", user=user(), channel="C0IMAGE")
    assert answer["text"].startswith(refusal + "\nUsage: `/image <prompt>")


async def test_conversation_ids_and_persona_numbers_are_ascii(bot: SlackBot) -> None:
    answer = await run_command(bot, "/archive", "٣", user=user(), channel="C0IDS")
    assert answer["text"].startswith("Usage: `/archive <id>`")
    created = await run_command(
        bot, "/persona", "create arabic max_tokens:١٠٠ Be brief.", user=ADMIN, channel="C0IDS"
    )
    assert created["text"] == "`max_tokens` must be a whole number (got '١٠٠')."
    created = await run_command(
        bot, "/persona", "create nan temperature:nan Be brief.", user=ADMIN, channel="C0IDS"
    )
    assert created["text"] == "`temperature` must be a number (got 'nan')."


async def test_a_button_value_that_is_not_an_ascii_id_no_longer_works(bot: SlackBot) -> None:
    asker, channel = user(), "C0BUTTON"
    bot.llm.queue("workers", workers_stream(["Answered."]))
    thread = await ask(bot, "answer me", user=asker, channel=channel)
    [reply] = bot.fake.bot_replies(channel, thread)
    regenerate = next(b for b in reply.buttons() if b["action_id"] == "parley_regenerate")
    calls = len(bot.llm.calls)
    for value in ("١", " 1", "1_0", "9" * 30):
        await bot.sender.click(
            {**regenerate, "value": value},
            user=asker,
            channel=channel,
            message_ts=reply.ts,
            thread_ts=thread,
        )
    await bot.fake.wait_for(lambda: len(ephemerals_to(bot.fake, asker, channel)) >= 4)
    assert ephemerals_to(bot.fake, asker, channel) == ["That button no longer works."] * 4
    assert len(bot.llm.calls) == calls
