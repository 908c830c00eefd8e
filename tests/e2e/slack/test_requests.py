"""Signatures, retries, buttons and Socket Mode, against the real `python -m bot`."""

from __future__ import annotations

import asyncio
import time

import aiohttp

from bot.engine.admission import REFUSAL_MODERATION
from bot.store import Store
from tests.e2e.slack.conftest import ALICE, BOB, CHANNEL, TEAM, SlackBot, StartBot
from tests.e2e.slack.helpers import finished, question_thread, wait_answer
from tests.fakes.llm_server import moderation_result, workers_stream
from tests.fakes.slack import Message


async def test_bad_signature_and_stale_timestamp_get_401_and_no_web_call(bot: SlackBot) -> None:
    body = bot.sender.command_body("/chat", "hi", user=ALICE, channel=CHANNEL)
    form = "application/x-www-form-urlencoded"
    forged = await bot.sender.post(body, form, secret="not-the-secret")
    stale = await bot.sender.post(body, form, timestamp=int(time.time()) - 6 * 60)
    unsigned = await bot.sender.post(body, form, extra_headers={"X-Slack-Signature": ""})
    assert (forged.status, stale.status, unsigned.status) == (401, 401, 401)
    await asyncio.sleep(0.5)
    assert bot.fake.calls == [] and bot.llm.calls == []


async def test_a_retried_event_gets_one_reply(bot: SlackBot) -> None:
    bot.llm.queue("workers", workers_stream(["Once."], delay=0.3))
    mention = bot.sender.mention(CHANNEL, ALICE, "answer once")
    twin = {**mention, "type": "message", "channel_type": "channel"}  # the same message, twice
    first = await bot.sender.event(mention, event_id="Ev0RETRY")
    retry = await bot.sender.event(mention, event_id="Ev0RETRY", retry_num=1)
    await bot.sender.event(twin, event_id="Ev0TWIN")
    assert (first.status, retry.status) == (200, 200)
    [reply] = await wait_answer(bot.fake, CHANNEL, mention["ts"])
    await asyncio.sleep(0.5)
    assert reply.text == "Once."
    assert len(bot.llm.calls_to("workers")) == 1
    assert len(bot.fake.bot_replies(CHANNEL, mention["ts"])) == 1


def _button(message: Message, action: str) -> dict[str, object]:
    return next(b for b in message.buttons() if b["action_id"] == f"parley_{action}")


async def test_stop_and_regenerate_act_for_the_asker_only(start_bot: StartBot) -> None:
    bot = await start_bot(SLACK_NATIVE_STREAMING="false")
    fake, sender = bot.fake, bot.sender
    bot.llm.queue("workers", workers_stream([f"tick {i} " for i in range(60)], delay=0.1))
    bot.llm.queue("workers", workers_stream(["A fresh answer."]))
    await sender.command("/chat", "count slowly", user=ALICE, channel=CHANNEL)
    await fake.wait_for(lambda: fake.calls_to("chat.postMessage"))
    thread = question_thread(fake)

    def streaming() -> list[Message]:
        return [m for m in fake.bot_replies(CHANNEL, thread) if m.buttons()]

    await fake.wait_for(streaming)
    message = streaming()[0]
    stop = _button(message, "stop")
    await sender.click(stop, user=BOB, channel=CHANNEL, message_ts=message.ts, thread_ts=thread)
    await fake.wait_for(lambda: fake.ephemerals)
    assert (fake.ephemerals[0].user, fake.ephemerals[0].text) == (
        BOB,
        "Only the person who asked can stop this reply.",
    )
    await sender.click(stop, user=ALICE, channel=CHANNEL, message_ts=message.ts, thread_ts=thread)
    [reply] = await wait_answer(fake, CHANNEL, thread)
    assert reply.text.endswith("_(stopped)_") and reply.text.startswith("tick 0")

    await sender.click(stop, user=ALICE, channel=CHANNEL, message_ts=reply.ts, thread_ts=thread)
    await fake.wait_for(lambda: len(fake.ephemerals) >= 2)
    assert fake.ephemerals[1].text == "That reply has already finished."

    regenerate = _button(reply, "regenerate")
    await sender.click(regenerate, user=BOB, channel=CHANNEL, message_ts=reply.ts, thread_ts=thread)
    await fake.wait_for(lambda: len(fake.ephemerals) >= 3)
    assert fake.ephemerals[2].text == "Only the person who asked can regenerate this."
    await sender.click(
        regenerate, user=ALICE, channel=CHANNEL, message_ts=reply.ts, thread_ts=thread
    )
    replies = await wait_answer(fake, CHANNEL, thread, count=2)
    assert replies[-1].text == "A fresh answer." and finished(replies[-1])
    first, second = (c.body["messages"] for c in bot.llm.calls_to("workers"))
    assert first == second  # the same question, asked again

    unknown = {**regenerate, "value": "999999"}
    await sender.click(unknown, user=ALICE, channel=CHANNEL, message_ts=reply.ts, thread_ts=thread)
    await fake.wait_for(lambda: len(fake.ephemerals) >= 4)
    assert fake.ephemerals[3].text == "That reply no longer exists."


async def test_stop_during_a_native_stream_ends_it_and_leaves_no_stop_button(
    bot: SlackBot,
) -> None:
    fake, sender = bot.fake, bot.sender
    bot.llm.queue("workers", workers_stream([f"tick {i} " for i in range(80)], delay=0.1))
    await sender.command("/chat", "count slowly", user=ALICE, channel=CHANNEL)
    await fake.wait_for(lambda: fake.calls_to("chat.postMessage"))
    thread = question_thread(fake)

    def stop_buttons() -> list[Message]:
        return [m for m in fake.bot_replies(CHANNEL, thread) if _has(m, "stop")]

    await fake.wait_for(lambda: stop_buttons() and fake.calls_to("chat.appendStream"))
    [note] = stop_buttons()
    [stream] = [m for m in fake.bot_replies(CHANNEL, thread) if m.streamed]
    assert stream.streaming and not stream.buttons() and not note.streamed
    assert note.ts > stream.ts  # below the reply it stops
    stop = _button(note, "stop")
    await sender.click(stop, user=ALICE, channel=CHANNEL, message_ts=note.ts, thread_ts=thread)

    [reply] = await wait_answer(fake, CHANNEL, thread)
    assert reply is stream and not reply.streaming
    assert reply.text.startswith("tick 0 tick 1") and reply.text.endswith("_(stopped)_")
    assert "tick 79" not in reply.text and reply.text.count("tick 1 ") == 1  # nothing twice
    assert [m.ts for m in fake.deleted] == [note.ts]
    assert not [m for m in fake.bot_replies(CHANNEL, thread) if _has(m, "stop")]
    assert not fake.calls_to("chat.update") and not fake.ephemerals
    store = await Store.open(f"sqlite+aiosqlite:///{bot.log.parent / 'parley.db'}")
    try:
        turn = await store.get_message(int(str(stop["value"])))
    finally:
        await store.close()
    assert turn is not None and turn.status == "interrupted"
    assert turn.content.startswith("tick 0") and "tick 79" not in turn.content


def _has(message: Message, action: str) -> bool:
    return any(b.get("action_id") == f"parley_{action}" for b in message.buttons())


async def test_socket_mode_slash_command_round_trip(start_bot: StartBot) -> None:
    bot = await start_bot(SLACK_APP_TOKEN="xapp-1-test-app-token", SLACK_SIGNING_SECRET="")
    fake = bot.fake
    await fake.wait_socket()
    bot.llm.queue("workers", workers_stream(["Over the socket."], delay=0.2))
    started = time.monotonic()
    envelope = await fake.send_envelope(
        "slash_commands",
        {
            "token": "legacy",
            "team_id": TEAM,
            "channel_id": CHANNEL,
            "user_id": ALICE,
            "command": "/chat",
            "text": "via socket",
            "api_app_id": "A0PARLEY",
            "response_url": fake.new_response_url(CHANNEL, ALICE),
            "trigger_id": "1.2.3",
        },
        accepts_response_payload=True,
    )
    ack = await fake.wait_ack(envelope)
    assert ack.at - started < 3.0
    async with (  # connected: the platform counts as ready
        aiohttp.ClientSession() as session,
        session.get(f"http://127.0.0.1:{bot.port}/readyz") as response,
    ):
        assert response.status == 200
        assert (await response.json())["checks"] == {"store": True, "slack": True}
    await fake.wait_for(lambda: fake.calls_to("chat.postMessage"))
    [reply] = await wait_answer(fake, CHANNEL, question_thread(fake))
    assert reply.text == "Over the socket."
    assert fake.calls_to("apps.connections.open")[0].ok
    # The HTTP endpoint is not mounted without a signing secret.
    sent = await bot.sender.command("/chat", "hi", user=ALICE, channel=CHANNEL)
    assert sent.status in (404, 405)


async def test_regenerate_passes_moderation_and_the_chat_limits(start_bot: StartBot) -> None:
    """A regeneration is a turn like any other: moderated, and counted by the limits."""
    bot = await start_bot(
        SLACK_NATIVE_STREAMING="false",
        MODERATION_MODEL="openai:omni-moderation-latest",
        CHAT_MESSAGES_PER_MINUTE="3",
    )
    fake, sender, llm = bot.fake, bot.sender, bot.llm
    llm.queue("workers", workers_stream(["First answer."]))
    llm.queue("workers", workers_stream(["Second answer."]))
    await sender.command("/chat", "answer me", user=ALICE, channel=CHANNEL)
    await fake.wait_for(lambda: fake.calls_to("chat.postMessage"))
    thread = question_thread(fake)
    [reply] = await wait_answer(fake, CHANNEL, thread)
    regenerate = _button(reply, "regenerate")

    def said() -> tuple[int, int]:
        return len(fake.ephemerals), len(fake.bot_replies(CHANNEL, thread))

    async def click() -> None:
        await sender.click(
            regenerate, user=ALICE, channel=CHANNEL, message_ts=reply.ts, thread_ts=thread
        )

    async def click_and_hear() -> str:
        """Regenerate as alice; what she is told next, privately or in the thread."""
        before = said()
        await click()
        await fake.wait_for(lambda: said() != before)
        if said()[0] > before[0]:
            return fake.ephemerals[-1].text
        return fake.bot_replies(CHANNEL, thread)[-1].text

    llm.queue("moderation", moderation_result(flagged=True, categories=["harassment"]))
    assert await click_and_hear() == REFUSAL_MODERATION  # answer 2 of 3: a refusal
    await click()
    replies = await wait_answer(fake, CHANNEL, thread, count=2)  # answer 3 of 3
    assert replies[-1].text == "Second answer."
    assert "3 messages a minute" in await click_and_hear()  # a fourth is over the limit
    assert len(llm.calls_to("workers")) == 2
    assert [c.body["input"] for c in llm.calls_to("moderation")] == ["answer me"] * 3
