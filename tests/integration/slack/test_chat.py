"""/chat, thread replies, long replies and the reply's buttons through slack-bolt in process.

The same paths run through the real `python -m bot` in tests/e2e/slack/; here the adapter and the
streamer share the test's event loop, so these are quick and their failures point at one place.
"""

from __future__ import annotations

import itertools
import re
from typing import Any

from tests.e2e.slack.helpers import finished, question_thread, wait_answer
from tests.fakes.llm_server import LLMFake, workers_stream
from tests.fakes.slack import Message, SlackFake
from tests.integration.slack.conftest import RunningSlack, start_slack

ALICE, BOB, CHANNEL = "U0ALICE", "U0BOB", "C0CHAT"
CODE = "\n".join(f"    total += values[{i}]  # step {i}" for i in range(120))
LONG = (
    "Here is the plan, in prose first. " * 40
    + f"\n\n```python\ndef add(values):\n    total = 0\n{CODE}\n    return total\n```\n\n"
    + "And that is all there is to it. " * 30
)


def _button(message: Message, action: str) -> dict[str, Any]:
    return next(b for b in message.buttons() if b["action_id"] == f"parley_{action}")


async def test_chat_streams_natively_in_its_thread_and_a_reply_continues_it(
    slack_bot: RunningSlack, llm_fake: LLMFake
) -> None:
    fake, sender = slack_bot.fake, slack_bot.sender
    llm_fake.queue("workers", workers_stream(["The answer", " is 42", "."], delay=0.2))
    llm_fake.queue("workers", workers_stream(["Because."]))
    await sender.command("/chat", "What is the answer?", user=ALICE, channel=CHANNEL)
    await fake.wait_for(lambda: fake.calls_to("chat.postMessage"))
    thread = question_thread(fake)
    [reply] = await wait_answer(fake, CHANNEL, thread)
    assert reply.text == "The answer is 42." and reply.streamed and finished(reply)
    appended = [c.args.get("markdown_text", "") for c in fake.calls_to("chat.appendStream")]
    assert "".join(appended) in reply.text  # appended once each, never again

    await sender.event(sender.message(CHANNEL, ALICE, "Why?", thread_ts=thread))
    replies = await wait_answer(fake, CHANNEL, thread, count=2)
    assert [m.text for m in replies] == ["The answer is 42.", "Because."]
    sent = llm_fake.calls_to("workers")[1].body["messages"]
    assert [m["content"] for m in sent if m["role"] != "system"] == [
        "What is the answer?",
        "The answer is 42.",
        "Why?",
    ]


async def test_a_long_native_reply_is_split_and_no_text_shows_twice(
    slack_bot: RunningSlack, llm_fake: LLMFake
) -> None:
    fake, sender = slack_bot.fake, slack_bot.sender
    pieces = [LONG[i : i + 40] for i in range(0, len(LONG), 40)]
    llm_fake.queue("workers", workers_stream(pieces, delay=0.02))
    await sender.command("/chat", "Write it out", user=ALICE, channel=CHANNEL)
    await fake.wait_for(lambda: fake.calls_to("chat.postMessage"))
    thread = question_thread(fake)
    replies = await wait_answer(fake, CHANNEL, thread)
    assert len(replies) >= 2 and all(m.streamed for m in replies)
    assert all(len(m.text) <= 3_500 for m in replies)
    steps = [int(n) for n in re.findall(r"# step ([0-9]+)", "\n".join(m.text for m in replies))]
    assert steps == list(range(120))  # every line of the code once, in order
    for message in replies:  # what each stream showed only ever grew
        shown = message.edits
        assert all(b.startswith(a) for a, b in itertools.pairwise(shown)), shown
    assert finished(replies[-1]) and not any(finished(m) for m in replies[:-1])


async def test_stop_and_regenerate_are_the_askers_only(
    slack_fake: SlackFake, llm_fake: LLMFake
) -> None:
    running = await start_slack(slack_fake, llm_fake, slack_native_streaming=False)
    fake, sender = running.fake, running.sender
    try:
        llm_fake.queue("workers", workers_stream([f"tick {i} " for i in range(60)], delay=0.1))
        llm_fake.queue("workers", workers_stream(["Again."]))
        await sender.command("/chat", "count slowly", user=ALICE, channel=CHANNEL)
        await fake.wait_for(lambda: fake.calls_to("chat.postMessage"))
        thread = question_thread(fake)

        def live() -> list[Message]:
            return [m for m in fake.bot_replies(CHANNEL, thread) if m.buttons()]

        await fake.wait_for(live)
        message = live()[0]
        stop = _button(message, "stop")
        where = {"channel": CHANNEL, "message_ts": message.ts, "thread_ts": thread}
        await sender.click(stop, user=BOB, **where)
        await fake.wait_for(lambda: fake.ephemerals)
        assert fake.ephemerals[0].text == "Only the person who asked can stop this reply."
        await sender.click(stop, user=ALICE, **where)
        [reply] = await wait_answer(fake, CHANNEL, thread)
        assert reply.text.endswith("_(stopped)_")

        regenerate = _button(reply, "regenerate")
        await sender.click(regenerate, user=BOB, **where)
        await fake.wait_for(lambda: len(fake.ephemerals) >= 2)
        assert fake.ephemerals[1].text == "Only the person who asked can regenerate this."
        await sender.click(regenerate, user=ALICE, **where)
        replies = await wait_answer(fake, CHANNEL, thread, count=2)
        assert replies[-1].text == "Again." and len(llm_fake.calls_to("workers")) == 2
    finally:
        await running.close()


async def test_replies_sharing_a_workspace_budget_take_turns_and_none_starves(
    slack_fake: SlackFake, llm_fake: LLMFake
) -> None:
    """Six native replies at once in one workspace, its chat.appendStream budget scaled down
    (24 per 6 s, the fake's sliding window the same): each gets its share of the appends, in
    turn, and every final text is exact; no 429."""
    running = await start_slack(
        slack_fake, llm_fake, slack_update_rate_per_min=120, slack_rate_window_seconds=6
    )
    fake, sender = running.fake, running.sender
    fake.limit("chat.appendStream", 24, 6.0)
    try:
        answers = [[f"Reply {n}:"] + [f" word{i}" for i in range(40)] for n in range(6)]
        for pieces in answers:
            llm_fake.queue("workers", workers_stream(pieces, delay=0.1))  # 4 s each
        for n in range(6):
            await sender.command("/chat", f"q{n}", user=ALICE, channel=f"C0FAIR{n}")
        finals = []
        for n in range(6):
            await fake.wait_for(lambda n=n: _threads(fake, f"C0FAIR{n}"))
            [reply] = await wait_answer(
                fake, f"C0FAIR{n}", _threads(fake, f"C0FAIR{n}")[0], within=40
            )
            finals.append(reply.text)
        assert finals == ["".join(pieces) for pieces in answers]
        appends = fake.calls_to("chat.appendStream")
        assert not [c for c in appends if c.rate_limited]
        per_reply = [sum(1 for c in appends if c.args["channel"] == f"C0FAIR{n}") for n in range(6)]
        assert min(per_reply) >= 2 and max(per_reply) - min(per_reply) <= 1, per_reply
    finally:
        await running.close()


def _threads(fake: SlackFake, channel: str) -> list[str]:
    return [
        str(c.response["ts"])
        for c in fake.calls_to("chat.postMessage")
        if c.ok and c.args.get("channel") == channel and not c.args.get("thread_ts")
    ]
