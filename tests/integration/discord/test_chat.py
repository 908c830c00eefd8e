"""/chat and conversations through the real discord.py client against the strict fake Discord."""

from __future__ import annotations

import asyncio

from tests.fakes.discord import FakeDiscord
from tests.fakes.llm_server import LLMFake, openai_stream, workers_error, workers_stream
from tests.integration.discord.conftest import Running, reply_messages


async def test_chat_defers_streams_by_edits_and_opens_a_thread(
    discord_fake: FakeDiscord, llm_fake: LLMFake, bot: Running
) -> None:
    pieces = ["The ", "answer ", "is ", "forty-", "two."]
    llm_fake.queue("workers", workers_stream(pieces, delay=0.15))
    channel = discord_fake.channel_ids[0]
    inter = await discord_fake.slash("chat", {"prompt": "What is the answer?"})
    final = await discord_fake.wait_until(lambda: discord_fake.finished(channel), what="reply")

    assert inter.ack_type == 5 and inter.acked_at is not None
    assert inter.acked_at - inter.created < 3.0
    assert final["content"] == "The answer is forty-two."
    assert discord_fake.custom_ids(final) == [f"parley:regenerate:{2}"]
    thread = discord_fake.channels[final["id"]]  # thread id == message id
    assert thread["name"] == "What is the answer?" and thread["parent_id"] == channel
    edits = [c for c in discord_fake.calls_to("message.edit") if c.params["message"] == final["id"]]
    assert len(edits) >= 2  # streamed: at least one interim frame, then the final text
    interim = edits[0].body
    assert interim["content"].endswith("▌")
    assert [c["custom_id"] for c in interim["components"][0]["components"]] == ["parley:stop:2"]
    assert not discord_fake.rate_limited
    # the reply is a normal bot message, not the interaction webhook
    assert all(c.route != "followup.create" for c in discord_fake.calls)

    # a follow-up in the thread needs no mention, and its prompt carries the earlier turns
    llm_fake.queue("workers", workers_stream(["Because ", "Douglas Adams."]))
    await discord_fake.say("Why that number?", channel=thread["id"])
    second = await discord_fake.wait_until(
        lambda: discord_fake.finished(thread["id"]), what="thread reply"
    )
    assert second["content"] == "Because Douglas Adams."
    messages = llm_fake.calls_to("workers")[-1].body["messages"]
    assert [m["content"] for m in messages if m["role"] != "system"] == [
        "What is the answer?",
        "The answer is forty-two.",
        "Why that number?",
    ]


async def test_a_long_answer_with_code_arrives_whole_in_two_messages(
    discord_fake: FakeDiscord, llm_fake: LLMFake, bot: Running
) -> None:
    code = "\n".join(f"value_{i:03d} = compute({i}, scale=2.5)  # step {i}" for i in range(64))
    answer = f"Here is the script:\n\n```python\n{code}\n```\n\nRun it with Python 3.11."
    assert 2900 < len(answer) < 3200
    llm_fake.queue(
        "workers", workers_stream([answer[i : i + 200] for i in range(0, len(answer), 200)])
    )
    channel = discord_fake.channel_ids[1]
    await discord_fake.slash("chat", {"prompt": "Write a script"}, channel=channel)
    await discord_fake.wait_until(
        lambda: (
            discord_fake.finished(channel)
            or discord_fake.finished(_thread_of(discord_fake, channel))
        ),
        what="reply",
    )
    parts = [m["content"] for m in reply_messages(discord_fake, channel)]
    assert len(parts) == 2
    assert all(len(p) <= 2000 and p.count("```") % 2 == 0 for p in parts)
    body_lines = [line for p in parts for line in p.splitlines() if not line.startswith("```")]
    assert body_lines == [line for line in answer.splitlines() if not line.startswith("```")]
    assert "parley:regenerate:" in str(reply_messages(discord_fake, channel)[-1]["components"])


def _thread_of(fake: FakeDiscord, channel: str) -> str:
    starters = [m["id"] for m in fake.bot_messages(channel) if m["id"] in fake.channels]
    return starters[-1] if starters else "-"


async def test_429s_on_edits_are_waited_out_and_the_final_text_is_exact(
    discord_fake: FakeDiscord, llm_fake: LLMFake, bot: Running
) -> None:
    pieces = [f"word{i} " for i in range(12)]
    llm_fake.queue("workers", workers_stream(pieces, delay=0.08))
    discord_fake.buckets.force("edit", 0.4, 0.4)
    channel = discord_fake.channel_ids[2]
    await discord_fake.slash("chat", {"prompt": "Count"}, channel=channel)
    final = await discord_fake.wait_until(lambda: discord_fake.finished(channel), what="reply")
    assert final["content"] == "".join(pieces).strip()
    limited = discord_fake.rate_limited
    assert len(limited) == 2
    assert bot.adapter.watch.seen_429 == 2  # the streamer was told about each one
    after = [c for c in discord_fake.calls_to("message.edit") if c.at > limited[-1].at]
    assert after and after[0].at - limited[-1].at >= 0.38  # waited as told before editing again


async def test_provider_failure_before_the_first_token_falls_back(
    discord_fake: FakeDiscord, llm_fake: LLMFake, bot: Running
) -> None:
    llm_fake.queue("workers", workers_error(5007))
    llm_fake.queue("openai", openai_stream(["From ", "the fallback."]))
    channel = discord_fake.channel_ids[3]
    await discord_fake.slash("chat", {"prompt": "Hello"}, channel=channel)
    final = await discord_fake.wait_until(lambda: discord_fake.finished(channel), what="reply")
    assert final["content"] == "From the fallback."


async def test_provider_failure_after_output_keeps_the_partial_text_with_a_notice(
    discord_fake: FakeDiscord, llm_fake: LLMFake, bot: Running
) -> None:
    llm_fake.queue(
        "workers", workers_stream(["Partial ", "answer"], usage=None, done=False).dropped()
    )
    channel = discord_fake.channel_ids[4]
    await discord_fake.slash("chat", {"prompt": "Hello"}, channel=channel)
    final = await discord_fake.wait_until(lambda: discord_fake.finished(channel), what="reply")
    assert final["content"].startswith("Partial answer\n\n_(reply interrupted:")
    assert "Traceback" not in final["content"]


async def test_ten_conversations_in_ten_channels_finish_exactly_and_independently(
    discord_fake: FakeDiscord, llm_fake: LLMFake, bot: Running
) -> None:
    def answer(call: object) -> object:
        prompt = call.body["messages"][-1]["content"]  # type: ignore[attr-defined]
        return workers_stream([f"Answer to {prompt}: ", "one ", "two ", "three."], delay=0.05)

    llm_fake.respond_with("workers", answer)  # type: ignore[arg-type]
    channels = discord_fake.channel_ids[:10]
    await asyncio.gather(
        *(
            discord_fake.slash("chat", {"prompt": f"question {i}"}, channel=c)
            for i, c in enumerate(channels)
        )
    )
    for i, channel in enumerate(channels):
        final = await discord_fake.wait_until(
            lambda c=channel: discord_fake.finished(c), what=f"reply {i}"
        )
        assert final["content"] == f"Answer to question {i}: one two three."
        assert discord_fake.channels[final["id"]]["name"] == f"question {i}"
    assert not discord_fake.rate_limited
