"""`python -m bot` on Slack over HTTP: /chat, threads, mentions, DMs, streaming and its limits."""

from __future__ import annotations

import asyncio

import pytest

from tests.e2e.shapes import SHAPES
from tests.e2e.slack.conftest import ALICE, CHANNEL, TEAM, SlackBot, StartBot
from tests.e2e.slack.helpers import finished, question_thread, wait_answer, words
from tests.fakes.llm_server import (
    StreamScript,
    anthropic_error,
    openai_error,
    raw_stream,
    sse,
    workers_error,
    workers_stream,
)

PIECES = ["The answer", " is **42**", ", as everyone", " knows."]
ANSWER = "".join(PIECES)


async def test_chat_is_acked_fast_then_answered_natively_in_its_thread(bot: SlackBot) -> None:
    bot.llm.queue("workers", workers_stream(PIECES, delay=0.25))
    sent = await bot.sender.command("/chat", "What is the answer?", user=ALICE, channel=CHANNEL)
    assert sent.status == 200
    assert sent.elapsed < 3.0
    fake = bot.fake
    await fake.wait_for(lambda: fake.calls_to("chat.postMessage"))
    thread = question_thread(fake)
    question = fake.messages[(CHANNEL, thread)]
    assert question.text == f"<@{ALICE}> asked:\n> What is the answer?"

    [reply] = await wait_answer(fake, CHANNEL, thread)
    assert reply.streamed and not reply.streaming
    assert reply.text == ANSWER
    start = fake.calls_to("chat.startStream")[0].args
    assert (start["thread_ts"], start["recipient_user_id"], start["recipient_team_id"]) == (
        thread,
        ALICE,
        TEAM,
    )
    # Streamed in more than one call, the status shown first, nothing edited.
    assert len(fake.calls_to("chat.appendStream")) + len(fake.calls_to("chat.stopStream")) >= 2
    assert fake.statuses[0]["status"] == "is thinking…"
    assert not fake.calls_to("chat.update")
    prompt = bot.llm.calls_to("workers")[0].body["messages"]
    assert prompt[-1] == {"role": "user", "content": "What is the answer?"}


async def test_refused_native_streaming_falls_back_to_post_and_update_once(
    bot: SlackBot,
) -> None:
    fake = bot.fake
    fake.native_streaming = False
    bot.llm.queue("workers", workers_stream(PIECES, delay=0.4))
    bot.llm.queue("workers", workers_stream(["Second."]))
    await bot.sender.command("/chat", "first", user=ALICE, channel=CHANNEL)
    await fake.wait_for(lambda: fake.calls_to("chat.postMessage"))
    thread = question_thread(fake)
    [reply] = await wait_answer(fake, CHANNEL, thread)
    assert reply.text == ANSWER and not reply.streamed
    assert len(fake.calls_to("chat.update")) >= 1
    # Every frame the fallback showed is a prefix of the answer: nothing was shown twice.
    assert all(ANSWER.startswith(text.removesuffix(" ▌")) for text in reply.edits)

    await bot.sender.command("/chat", "second", user=ALICE, channel=CHANNEL)
    await fake.wait_for(lambda: len(fake.calls_to("chat.postMessage")) >= 3)
    second = question_thread(fake, 1)
    [again] = await wait_answer(fake, CHANNEL, second)
    assert again.text == "Second."
    assert len(fake.calls_to("chat.startStream")) == 1  # the refusal is remembered per workspace


async def test_thread_reply_continues_the_conversation_without_a_mention(bot: SlackBot) -> None:
    bot.llm.queue("workers", workers_stream(["Paris."]))
    bot.llm.queue("workers", workers_stream(["About 2.1 million."]))
    fake = bot.fake
    await bot.sender.command("/chat", "Capital of France?", user=ALICE, channel=CHANNEL)
    await fake.wait_for(lambda: fake.calls_to("chat.postMessage"))
    thread = question_thread(fake)
    await wait_answer(fake, CHANNEL, thread)

    event = bot.sender.message(CHANNEL, ALICE, "And its population?", thread_ts=thread)
    assert (await bot.sender.event(event)).status == 200
    replies = await wait_answer(fake, CHANNEL, thread, count=2)
    assert [m.text for m in replies if m.is_bot] == ["Paris.", "About 2.1 million."]
    prompt = bot.llm.calls_to("workers")[1].body["messages"]
    assert [m["content"] for m in prompt if m["role"] != "system"] == [
        "Capital of France?",
        "Paris.",
        "And its population?",
    ]
    # Chatter outside the bot's threads is not answered.
    await bot.sender.event(bot.sender.message(CHANNEL, ALICE, "lunch?"))
    await asyncio.sleep(0.5)
    assert len(bot.llm.calls_to("workers")) == 2


def _long_answer() -> list[str]:
    paragraphs = [
        " ".join(f"word{p}-{w}" for w in range(60)) for p in range(30)
    ]  # ~10,000 characters in paragraphs
    text = "\n\n".join(paragraphs)
    assert len(text) >= 10_000
    return [text[i : i + 400] for i in range(0, len(text), 400)]


async def test_long_answer_arrives_whole_across_thread_replies(start_bot: StartBot) -> None:
    bot = await start_bot(SLACK_NATIVE_STREAMING="false")
    pieces = _long_answer()
    bot.llm.queue("workers", workers_stream(pieces, delay=0.05))
    fake = bot.fake
    await bot.sender.command("/chat", "Write a lot", user=ALICE, channel=CHANNEL)
    await fake.wait_for(lambda: fake.calls_to("chat.postMessage"))
    thread = question_thread(fake)
    replies = await wait_answer(fake, CHANNEL, thread)
    assert len(replies) >= 3
    assert words(" ".join(m.text for m in replies)) == words("".join(pieces))
    assert all(len(m.text) <= 3_500 for m in replies)
    assert not [c for c in fake.calls if c.error == "msg_too_long"]
    assert finished(replies[-1]) and not any(finished(m) for m in replies[:-1])


async def test_long_answer_streams_natively_across_thread_replies(bot: SlackBot) -> None:
    pieces = _long_answer()
    bot.llm.queue("workers", workers_stream(pieces, delay=0.05))
    fake = bot.fake
    await bot.sender.command("/chat", "Write a lot", user=ALICE, channel=CHANNEL)
    await fake.wait_for(lambda: fake.calls_to("chat.postMessage"))
    thread = question_thread(fake)
    replies = await wait_answer(fake, CHANNEL, thread)
    assert len(replies) >= 3 and all(m.streamed and not m.streaming for m in replies)
    assert words(" ".join(m.text for m in replies)) == words("".join(pieces))
    assert not [c for c in fake.calls if not c.ok]


async def test_rate_limited_updates_still_end_on_the_exact_text(start_bot: StartBot) -> None:
    bot = await start_bot(SLACK_NATIVE_STREAMING="false", SLACK_UPDATE_RATE_PER_MIN="6000")
    fake = bot.fake
    fake.inject("chat.update", times=2, retry_after=1)  # HTTP 429 + Retry-After
    fake.inject(
        "chat.update", times=1, http_429=False
    )  # HTTP 200 {"ok":false,"error":"ratelimited"}
    pieces = [f"chunk {i}. " for i in range(12)]
    bot.llm.queue("workers", workers_stream(pieces, delay=0.15))
    await bot.sender.command("/chat", "count", user=ALICE, channel=CHANNEL)
    await fake.wait_for(lambda: fake.calls_to("chat.postMessage"))
    [reply] = await wait_answer(fake, CHANNEL, question_thread(fake), within=30)
    assert reply.text == "".join(pieces).strip()
    limited = [c for c in fake.calls_to("chat.update") if c.rate_limited]
    assert [c.http_status for c in limited] == [429, 429, 200]


async def test_ten_streams_in_one_workspace_stay_under_the_update_limit(
    start_bot: StartBot,
) -> None:
    bot = await start_bot(
        SLACK_NATIVE_STREAMING="false", SLACK_UPDATE_RATE_PER_MIN="180",
        SLACK_RATE_WINDOW_SECONDS="1",
    )  # fmt: skip
    fake = bot.fake
    fake.limit("chat.update", 4, 1.0)  # Tier 3 scaled down: 4 a second per workspace
    answers = [[f"Reply {n}:"] + [f" part {i}" for i in range(6)] for n in range(10)]
    for pieces in answers:
        bot.llm.queue("workers", workers_stream(pieces, delay=0.15))
    await asyncio.gather(
        *(bot.sender.command("/chat", f"q{n}", user=ALICE, channel=CHANNEL) for n in range(10))
    )
    await fake.wait_for(lambda: len(fake.calls_to("chat.postMessage")) >= 10)
    threads = [question_thread(fake, i) for i in range(10)]
    finals = set()
    for thread in threads:
        [reply] = await wait_answer(fake, CHANNEL, thread, within=40)
        finals.add(reply.text)
    assert finals == {"".join(pieces) for pieces in answers}
    assert not [c for c in fake.calls_to("chat.update") if c.rate_limited]
    assert len(fake.calls_to("chat.update")) >= 10


async def test_mention_starts_a_thread_and_dms_answer_in_place(bot: SlackBot) -> None:
    bot.llm.queue("workers", workers_stream(["Hi from a thread."]))
    bot.llm.queue("workers", workers_stream(["Hi in a DM."]))
    bot.llm.queue("workers", workers_stream(["Other workspace."]))
    fake = bot.fake
    mention = bot.sender.mention(CHANNEL, ALICE, "hello?")
    await bot.sender.event(mention)
    [reply] = await wait_answer(fake, CHANNEL, mention["ts"])
    assert reply.text == "Hi from a thread."
    assert bot.llm.calls_to("workers")[0].body["messages"][-1]["content"] == "hello?"

    await bot.sender.event(bot.sender.message("D0ALICE", ALICE, "psst"))
    [dm] = await wait_answer(fake, "D0ALICE", None)
    assert dm.text == "Hi in a DM." and not dm.streamed  # native streams need a thread

    other = bot.sender.mention("C0OTHER", ALICE, "elsewhere")
    await bot.sender.event(other, team="T0002")
    await wait_answer(fake, "C0OTHER", other["ts"])
    assert fake.calls_to("chat.startStream")[-1].args["recipient_team_id"] == "T0002"


async def test_provider_failure_is_a_short_thread_message(bot: SlackBot) -> None:
    bot.llm.respond_with("workers", lambda call: workers_error(3040))
    bot.llm.respond_with("openai", lambda call: openai_error(400, "invalid_request_error"))
    bot.llm.respond_with("anthropic", lambda call: anthropic_error(400, "invalid_request_error"))
    await bot.sender.command("/chat", "hi", user=ALICE, channel=CHANNEL)
    fake = bot.fake
    await fake.wait_for(lambda: fake.calls_to("chat.postMessage"))
    [reply] = await wait_answer(fake, CHANNEL, question_thread(fake))
    assert reply.text.startswith("Sorry, I couldn't get an answer")
    assert len(reply.text) < 400 and "Traceback" not in reply.text


def _reasoning_stream(prompt_seconds: int = 8) -> StreamScript:
    thoughts = [
        sse({"choices": [{"index": 0, "delta": {"reasoning_content": f"step {i}. "}}]})
        for i in range(prompt_seconds)
    ]
    answer = [sse({"response": "It is "}), sse({"response": "four."}), sse("[DONE]")]
    return raw_stream(*thoughts, *answer, delay=0.4)


async def test_a_reasoning_model_thinks_in_the_stop_note_then_streams_only_its_answer(
    bot: SlackBot,
) -> None:
    fake = bot.fake
    bot.llm.queue("workers", _reasoning_stream())
    await bot.sender.command("/chat", "Think it over", user=ALICE, channel=CHANNEL)
    await fake.wait_for(lambda: fake.calls_to("chat.postMessage"))
    thread = question_thread(fake)
    await wait_answer(fake, CHANNEL, thread)
    answer = [m for m in fake.bot_replies(CHANNEL, thread) if m.streamed]
    assert [m.text for m in answer] == ["It is four."]
    notes = [c for c in fake.calls_to("chat.postMessage") if c.args.get("thread_ts") == thread]
    assert notes[0].args["text"] == "thinking… 0 s"  # posted before the answer, with Stop
    assert "parley_stop" in str(notes[0].args["blocks"])
    note_ts = notes[0].response["ts"]
    lines = [c.args["text"] for c in fake.calls_to("chat.update") if c.args["ts"] == note_ts]
    assert any(line.startswith("thinking… ") and line != "thinking… 0 s" for line in lines)
    assert lines[-1] == "Replying…"  # over before the text streamed
    assert (CHANNEL, note_ts) not in fake.messages  # and gone when the reply ended
    every = [str(c.args) for c in fake.calls if c.method.startswith("chat.")]
    assert not any("step " in text for text in every)


@pytest.mark.parametrize("shape", list(SHAPES))
async def test_every_stream_shape_shows_only_the_answer_or_says_why(
    bot: SlackBot, shape: str
) -> None:
    fake = bot.fake
    events, shown = SHAPES[shape]
    bot.llm.queue("workers", raw_stream(*events, sse("[DONE]")))
    await bot.sender.command("/chat", f"Shape {shape}", user=ALICE, channel=CHANNEL)
    await fake.wait_for(lambda: fake.calls_to("chat.postMessage"))
    thread = question_thread(fake)
    replies = await wait_answer(fake, CHANNEL, thread)
    assert [m.text for m in replies if finished(m)] == [shown]
    assert not any("plan" in str(c.args) for c in fake.calls if c.method.startswith("chat."))


async def test_a_rate_limited_stop_note_is_posted_again_after_its_retry_after(
    bot: SlackBot,
) -> None:
    fake = bot.fake
    bot.llm.queue("workers", workers_stream([f"part {i} " for i in range(30)], delay=0.15))
    await bot.sender.command("/chat", "A long one", user=ALICE, channel=CHANNEL)
    await fake.wait_for(lambda: fake.calls_to("chat.postMessage"))
    thread = question_thread(fake)
    fake.inject("chat.postMessage", retry_after=1)  # the Stop note's first post: 429
    await fake.wait_for(lambda: fake.calls_to("chat.startStream"))
    notes = lambda: [  # noqa: E731
        c
        for c in fake.calls_to("chat.postMessage")
        if c.args.get("thread_ts") == thread and "parley_stop" in str(c.args.get("blocks"))
    ]
    await fake.wait_for(lambda: any(c.ok for c in notes()), 10)
    first, second = notes()[:2]
    assert first.rate_limited and second.ok
    assert second.at - first.at >= 0.9  # after the Retry-After it was given
    [reply] = [m for m in await wait_answer(fake, CHANNEL, thread) if m.streamed]
    assert reply.text == "".join(f"part {i} " for i in range(30)).strip()
    assert (CHANNEL, second.response["ts"]) not in fake.messages  # deleted at the end


async def test_a_lone_reply_ends_in_one_round_trip_and_stop_goes_before_regenerate(
    bot: SlackBot,
) -> None:
    fake = bot.fake
    bot.llm.queue("workers", workers_stream(PIECES, delay=0.25))
    await bot.sender.command("/chat", "Finish fast", user=ALICE, channel=CHANNEL)
    await fake.wait_for(lambda: fake.calls_to("chat.postMessage"))
    thread = question_thread(fake)
    [reply] = await wait_answer(fake, CHANNEL, thread)
    assert reply.text == ANSWER
    stop = fake.calls_to("chat.stopStream")[-1]
    assert "markdown_text" not in stop.args  # the last words went in an append, beside the delete
    assert "parley_regenerate" in str(stop.args["blocks"])
    last_append = fake.calls_to("chat.appendStream")[-1]
    [delete] = [c for c in fake.calls_to("chat.delete") if c.args["channel"] == CHANNEL]
    assert ANSWER.endswith(last_append.args["markdown_text"])
    assert delete.at < stop.at  # no Stop left once Regenerate shows
