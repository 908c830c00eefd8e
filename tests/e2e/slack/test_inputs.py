"""Bad input on Slack gets a clear answer, through one real `python -m bot` for the module.

Unsigned or forged bodies get a 401 before anything is parsed; signed bodies Slack would never
send get a 400; numbers are ASCII digits in range (`²`, `٣` and 30-digit pages are refused with
the command's usage). Nothing of it leaves a traceback in the log.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import AsyncIterator

import aiohttp
import pytest
import pytest_asyncio

from tests.command_policy import typed_garbage
from tests.e2e.slack.conftest import SlackBot, launch_bot, stop_bot
from tests.e2e.slack.helpers import ask, ephemerals_to, run_command
from tests.fakes.llm_server import LLMFake, workers_stream
from tests.fakes.slack import SlackFake
from tests.fakes.slack.sender import signature

pytestmark = pytest.mark.asyncio(loop_scope="module")

ADMIN = "U0INADMIN"
FORM = "application/x-www-form-urlencoded"
JSON = "application/json"
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


async def post_raw(bot: SlackBot, body: bytes, headers: dict[str, str]) -> int:
    async with (
        aiohttp.ClientSession() as session,
        session.post(bot.events_url, data=body, headers=headers) as response,
    ):
        return response.status


MALFORMED = [
    (JSON, "{"),
    (JSON, "[1, 2]"),
    (JSON, '"a string"'),
    (JSON, '{"no": "type"}'),
    (FORM, "payload=%7Bnot-json"),
    (FORM, "payload=%5B%5D"),
    (FORM, "text=no+command+here"),
    ("text/plain", "hello"),
]


async def test_unsigned_malformed_bodies_get_401_and_nothing_is_parsed(bot: SlackBot) -> None:
    now = str(int(time.time()))
    calls, llm_calls = len(bot.fake.calls), len(bot.llm.calls)
    unsigned = [await post_raw(bot, body.encode(), {"Content-Type": k}) for k, body in MALFORMED]
    statuses = list(unsigned)
    forged = {"Content-Type": JSON, "X-Slack-Request-Timestamp": now, "X-Slack-Signature": "v0=0"}
    statuses.append(await post_raw(bot, b"{", forged))
    not_a_time = {"Content-Type": JSON, "X-Slack-Request-Timestamp": "soon"}
    not_a_time["X-Slack-Signature"] = signature(bot.sender.secret, "soon", "{}")
    statuses.append(await post_raw(bot, b"{}", not_a_time))
    not_utf8 = {"Content-Type": FORM, "X-Slack-Request-Timestamp": now, "X-Slack-Signature": "v0="}
    statuses.append(await post_raw(bot, b"payload=\xff\xfe", not_utf8))
    assert set(statuses) == {401}, statuses
    assert (len(bot.fake.calls), len(bot.llm.calls)) == (calls, llm_calls)


async def test_signed_bodies_slack_never_sends_get_400(bot: SlackBot) -> None:
    before = bot.output().count("malformed signed request refused")
    calls, llm_calls = len(bot.fake.calls), len(bot.llm.calls)
    statuses = [(await bot.sender.post(body, kind)).status for kind, body in MALFORMED]
    assert set(statuses) == {400}, statuses
    assert bot.output().count("malformed signed request refused") - before == len(MALFORMED)
    assert (len(bot.fake.calls), len(bot.llm.calls)) == (calls, llm_calls)


async def test_ssl_check_is_answered_without_a_signature(bot: SlackBot) -> None:
    assert await post_raw(bot, b"ssl_check=1&token=legacy", {"Content-Type": FORM}) == 200


async def test_a_chat_about_a_payload_is_answered(bot: SlackBot) -> None:
    # bolt reads a form containing the word "payload" as an interaction with none, and drops it
    asker = user()
    bot.llm.queue("workers", workers_stream(["A payload is the data carried."]))
    await ask(bot, "what is a payload?", user=asker, channel="C0PAYLOAD")
    assert bot.llm.calls_to("workers")[-1].body["messages"][-1]["content"] == "what is a payload?"


@pytest.mark.parametrize("page", ["²", "٣", "0", "1" * 30, "+2", " 2_0", "-1"])
async def test_history_pages_are_ascii_numbers_in_range(bot: SlackBot, page: str) -> None:
    answer = await run_command(bot, "/history", page, user=user(), channel="C0HISTORY")
    refusal = "`page` must be a whole number from 1 to 10,000 (got "
    assert answer["text"].startswith(refusal) and answer["text"].endswith(
        "\nUsage: `/history [page]`"
    )


async def test_history_page_ten_thousand_is_a_page(bot: SlackBot) -> None:
    answer = await run_command(bot, "/history", "10000", user=user(), channel="C0HISTORY")
    assert answer["text"] == "Page 10000 is empty."  # a page, not a refusal


@pytest.mark.parametrize(
    ("option", "refusal"),
    [
        ("seed:²", "`seed` must be a whole number from 0 to 4,294,967,295 (got '²')."),
        ("seed:4294967296", "`seed` must be a whole number from 0 to 4,294,967,295 (got "),
        ("steps:٢٠", "`steps` must be a whole number from 1 to 100 (got '٢٠')."),
        ("steps:" + "9" * 30, "`steps` must be a whole number from 1 to 100 (got "),
    ],
)
async def test_image_seed_and_steps_are_ascii_numbers_in_range(
    bot: SlackBot, option: str, refusal: str
) -> None:
    answer = await run_command(bot, "/image", f"a fox {option}", user=user(), channel="C0IMAGE")
    assert answer["text"].startswith(refusal)
    assert "\nUsage: `/image <prompt> [quality:" in answer["text"]


async def test_conversation_ids_and_persona_numbers_are_ascii(bot: SlackBot) -> None:
    answer = await run_command(bot, "/archive", "٣", user=user(), channel="C0IDS")
    assert answer["text"] == typed_garbage("archive", "٣")
    created = await run_command(
        bot, "/persona", "create arabic max_tokens:١٠٠ Be brief.", user=ADMIN, channel="C0IDS"
    )
    assert created["text"].startswith(
        "`max_tokens` must be a whole number from 1 to 999,999,999 (got '١٠٠').\nUsage:"
    )
    created = await run_command(
        bot, "/persona", "create nan temperature:nan Be brief.", user=ADMIN, channel="C0IDS"
    )
    assert created["text"].startswith("`temperature` must be a number (got 'nan').\nUsage:")


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
