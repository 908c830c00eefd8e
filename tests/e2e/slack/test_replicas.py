"""Two real `python -m bot` processes on one database, behind a load balancer that sends each
Slack request to either: an event Slack delivers to both gets one reply, Generate clicked on
both makes one image, and a breaker one replica opened is open for the other. (Stop, Approve and
Deny across replicas: test_restarts.py and test_tools.py.)"""

from __future__ import annotations

import asyncio

from tests.e2e.slack.conftest import ALICE, CHANNEL, StartBot
from tests.e2e.slack.helpers import finished, words
from tests.e2e.slack.test_images import (
    HIGH,
    ask,
    click,
    health,
    image_env,
    images,
    notes_for,
    wait_files,
)
from tests.fakes.images.server import ImageFake
from tests.fakes.llm_server import Call, Script, workers_stream
from tests.fakes.slack.records import SlackCall

__all__ = ["images"]  # the image fake's fixture


async def test_an_event_delivered_to_both_replicas_gets_one_reply(start_bot: StartBot) -> None:
    one, two = await start_bot(), await start_bot()
    fake = one.fake
    for _ in range(2):
        one.llm.queue("workers", workers_stream(["Only once."], delay=0.05))
    event = one.sender.mention(CHANNEL, ALICE, "answer me once")
    body = one.sender.event_body(event, event_id="Ev0REPLICA01")
    sent = await asyncio.gather(
        one.sender.post(body, "application/json"), two.sender.post(body, "application/json")
    )
    assert [s.status for s in sent] == [200, 200]
    await fake.wait_for(lambda: [m for m in fake.messages.values() if finished(m)], 20)
    await asyncio.sleep(0.5)  # a second answer would have started by now
    assert len([m for m in fake.messages.values() if finished(m)]) == 1
    assert len(one.llm.calls_to("workers")) == 1
    assert "duplicate event ignored" in one.output() + two.output()


async def test_generate_clicked_on_both_replicas_makes_one_image(
    images: ImageFake, start_bot: StartBot
) -> None:
    env = image_env(images)
    one, two = await start_bot(**env), await start_bot(**env)
    quote = await ask(one)
    await asyncio.gather(click(one, quote), click(two, quote))  # a double click, split
    await wait_files(one, 1)
    notes = await notes_for(one, ALICE, 1)
    assert "already" in notes[0]
    await asyncio.sleep(0.5)
    assert len(images.calls) == 1 and len(one.fake.files) == 1


async def test_a_breaker_one_replica_opened_is_open_for_the_other(
    images: ImageFake, start_bot: StartBot
) -> None:
    env = image_env(images, CIRCUIT_BREAKER_TIMEOUT_MS="60000")
    one, two = await start_bot(**env), await start_bot(**env)
    offered = [await ask(one, f"{HIGH} {i}") for i in range(6)]
    images.mode["openai"] = "fail"
    for n, quote in enumerate(offered[:5], 1):
        await click(one, quote)
        await wait_files(one, n)
    assert len(images.calls_to("openai")) == 5  # five failures open it (then a fallback)
    assert (await health(two))["providers"]["openai"]["circuitBreakerState"] == "OPEN"
    await click(two, offered[5])
    await wait_files(one, 6)
    assert len(images.calls_to("openai")) == 5  # the other replica did not try it
    caption = one.fake.files[5].initial_comment or ""
    assert "(replicate)" in caption and "fallback used" in caption


REPLIES = 12
PIECES = 60


def _count(call: Call) -> Script:
    tag = call.body["messages"][-1]["content"].rsplit(" ", 1)[-1]
    return workers_stream([f"{tag}w{j} " for j in range(PIECES)], delay=0.05)


async def _twelve_replies_on_two_replicas(start_bot: StartBot, *, share: bool) -> list[SlackCall]:
    """Twelve /chat replies at once in one workspace, six through each replica, with a
    chat.update limit of 20 per 10 s that the bot's budget is set to; every reply ends exact.
    Returns the chat.update calls."""
    env = {
        "SLACK_UPDATE_RATE_PER_MIN": "120",
        "SLACK_RATE_WINDOW_SECONDS": "10",
        "SLACK_NATIVE_STREAMING": "false",
    }
    one = await start_bot(**env)
    fake = one.fake
    fake.limit("chat.update", 20, 10.0)
    one.llm.respond_with("workers", _count)
    if not share:  # two replicas that do not share a database, so not a budget either
        env["DATABASE_URL"] = f"sqlite+aiosqlite:///{one.log.parent / 'other.db'}"
    two = await start_bot(**env)
    if share:  # the first replica has seen the second by its next renewal
        await fake.wait_for(lambda: "shared by 2" in one.output(), 10)
    channels = [f"C0SHARE{i:03d}" for i in range(REPLIES)]
    sent = await asyncio.gather(
        *(
            (one, two)[i % 2].sender.command("/chat", f"Count c{i}", user=ALICE, channel=c)
            for i, c in enumerate(channels)
        )
    )
    assert [s.status for s in sent] == [200] * REPLIES

    def answers() -> dict[str, list[str]]:
        return {
            c: [m.text for m in fake.messages.values() if m.channel == c and finished(m)]
            for c in channels
        }

    await fake.wait_for(lambda: all(answers().values()), 60)
    for i, channel in enumerate(channels):
        assert words(answers()[channel][0]) == words("".join(f"c{i}w{j} " for j in range(PIECES)))
    return fake.calls_to("chat.update")


async def test_two_replicas_split_the_workspace_budget_and_draw_no_429(
    start_bot: StartBot,
) -> None:
    updates = await _twelve_replies_on_two_replicas(start_bot, share=True)
    assert updates and not [c for c in updates if c.rate_limited]


async def test_replicas_that_do_not_share_the_budget_draw_429s(start_bot: StartBot) -> None:
    """The control: each replica at the whole budget makes more calls than the workspace's
    limit, so the test above can fail."""
    updates = await _twelve_replies_on_two_replicas(start_bot, share=False)
    assert [c for c in updates if c.rate_limited]
