"""Issue 3's end-to-end list, through one real `python -m bot` process for the whole module.

Each test uses channels no other test touched and prompts of its own: the LLM fake answers by
prompt (`Answers`), so tests do not depend on each other's order or leftovers.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections import defaultdict, deque
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

from adapters.discord.surface import MAX_CHARS
from tests.e2e.discord.conftest import BotProcess, Channels, discord_env, turn_of
from tests.e2e.shapes import SHAPES
from tests.fakes.discord import FakeDiscord
from tests.fakes.discord.payloads import text_of
from tests.fakes.llm_server import (
    Call,
    LLMFake,
    Script,
    openai_stream,
    raw_stream,
    sse,
    workers_error,
    workers_stream,
)

pytestmark = pytest.mark.asyncio(loop_scope="module")


class Answers:
    """The LLM fake's replies keyed by the newest user message; unknown prompts get a default."""

    def __init__(self, llm: LLMFake) -> None:
        self.scripts: dict[tuple[str, str], deque[Script]] = defaultdict(deque)
        self.llm = llm
        llm.respond_with("workers", lambda call: self._next("workers", call))
        llm.respond_with("openai", lambda call: self._next("openai", call))

    def add(self, prompt: str, *scripts: Script, family: str = "workers") -> None:
        self.scripts[(family, prompt)].extend(scripts)

    def _next(self, family: str, call: Call) -> Script:
        queue = self.scripts.get((family, asked(call)))
        if queue:
            return queue.popleft()
        return self.llm.default_script(call)

    def calls_for(self, prompt: str, family: str = "workers") -> list[Call]:
        return [
            c
            for c in self.llm.calls_to(family)  # type: ignore[arg-type]
            if c.body and asked(c) == prompt
        ]


def asked(call: Call) -> str:
    """The text of a call's newest message (the text part of a message with pictures); a
    call with no messages (a transcription) asks nothing."""
    if "messages" not in call.body:
        return ""
    content = call.body["messages"][-1]["content"]
    if isinstance(content, list):
        return "".join(part.get("text", "") for part in content if part.get("type") == "text")
    return str(content)


class World:
    def __init__(self, fake: FakeDiscord, llm: LLMFake, bot: BotProcess) -> None:
        self.fake = fake
        self.llm = llm
        self.bot = bot
        self.answers = Answers(llm)
        self.channels = Channels(fake)


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def world(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[World]:
    tmp: Path = tmp_path_factory.mktemp("discord-chat")
    async with FakeDiscord(channels=32) as fake, LLMFake() as llm:
        bot = await BotProcess(fake, discord_env(fake, llm, tmp), tmp).start()
        try:
            yield World(fake, llm, bot)
        finally:
            await bot.stop()
            assert "Traceback" not in bot.logs(), bot.logs()[-3000:]


def thread_of(fake: FakeDiscord, channel: str) -> str | None:
    """The thread the bot opened in `channel` (its id is the starter message's id)."""
    starters = [m["id"] for m in fake.bot_messages(channel) if m["id"] in fake.channels]
    return starters[-1] if starters else None


def reply_messages(fake: FakeDiscord, channel: str) -> list[dict[str, Any]]:
    """The reply to a /chat in `channel`: the thread's starter, then the bot's messages in it."""
    thread = thread_of(fake, channel)
    assert thread is not None
    return [fake.messages[thread], *fake.bot_messages(thread)]


def finished_anywhere(fake: FakeDiscord, channel: str) -> dict[str, Any] | None:
    thread = thread_of(fake, channel)
    return fake.finished(channel) or (fake.finished(thread) if thread else None)


async def logged(world: World, text: str) -> None:
    """Wait until the bot's log says `text` (a log line may trail what the fake saw)."""
    await world.fake.wait_until(lambda: text in world.bot.logs(), 5, what=f"log: {text}")


async def streaming_reply(world: World, channel: str, prompt: str) -> dict[str, Any]:
    """Start a long reply and return its message as soon as it shows Stop."""
    fake = world.fake
    world.answers.add(prompt, workers_stream([f"chunk{i} " for i in range(40)], delay=0.05))
    await fake.slash("chat", {"prompt": prompt}, channel=channel)
    return await fake.wait_until(
        lambda: next(
            (
                m
                for m in fake.bot_messages(channel)
                if any(c.startswith("parley:stop:") for c in fake.custom_ids(m))
            ),
            None,
        ),
        20,
        what="a streaming reply with Stop",
    )


async def test_a_3000_character_answer_with_code_arrives_as_two_messages_nothing_lost(
    world: World,
) -> None:
    fake, channel = world.fake, world.channels.take()
    code = "\n".join(f"value_{i:03d} = compute({i}, scale=2.5)  # step {i}" for i in range(64))
    answer = f"Here is the script:\n\n```python\n{code}\n```\n\nRun it with Python 3.11."
    assert 2900 < len(answer) < 3200
    world.answers.add(
        "Write a script", workers_stream([answer[i : i + 200] for i in range(0, len(answer), 200)])
    )
    await fake.slash("chat", {"prompt": "Write a script"}, channel=channel)
    await fake.wait_until(lambda: finished_anywhere(fake, channel), 20, what="the reply")
    parts = [text_of(m) for m in reply_messages(fake, channel)]
    assert len(parts) == 2
    # Components V2 text: more than a legacy message's 2,000 characters, never past our limit
    assert all(len(p) <= MAX_CHARS for p in parts) and len(parts[0]) > 2000
    # each message's fences balance: the split closed the block and reopened it
    assert all(p.count("```") % 2 == 0 for p in parts)
    assert parts[0].rstrip().endswith("```") and parts[1].startswith("```python")
    body = [line for p in parts for line in p.splitlines() if not line.startswith("```")]
    assert body == [line for line in answer.splitlines() if not line.startswith("```")]
    assert fake.custom_ids(reply_messages(fake, channel)[0]) == []  # buttons only on the last
    assert "parley:regenerate:" in str(reply_messages(fake, channel)[-1]["components"])


async def test_429s_on_edits_the_final_text_is_exact_and_the_bot_waited_as_told(
    world: World,
) -> None:
    fake, channel = world.fake, world.channels.take()
    pieces = [f"word{i} " for i in range(12)]
    world.answers.add("Count to twelve", workers_stream(pieces, delay=0.08))
    limited_before = len(fake.rate_limited)
    seen_before = world.bot.logs().count("discord 429 on PATCH")
    fake.buckets.force("webhook", 0.4, 0.4)
    inter = await fake.slash("chat", {"prompt": "Count to twelve"}, channel=channel)
    final = await fake.wait_until(lambda: fake.finished(channel), 20, what="the reply")
    assert text_of(final) == "".join(pieces).strip()
    limited = fake.rate_limited[limited_before:]
    # the reply streams through the /chat's own webhook: its edits are the ones limited
    assert len(limited) == 2
    assert all(c.route == "followup.edit" and c.params["token"] == inter.token for c in limited)
    # the streamer heard of each 429 (the adapter logs each one it hands over)
    await fake.wait_until(
        lambda: world.bot.logs().count("discord 429 on PATCH") - seen_before == 2, 5
    )
    assert inter.token not in world.bot.logs()  # a credential for 15 minutes: never logged
    assert "/[token]/messages/" in world.bot.logs()
    for hit in limited:
        later = [
            c
            for c in fake.calls_to("followup.edit")
            if c.params["token"] == inter.token and c.at > hit.at
        ]
        assert later and later[0].at - hit.at >= 0.38  # waited retry_after before editing again


async def test_a_reply_outliving_its_interaction_token_finishes_with_the_bot_token(
    world: World,
) -> None:
    fake, channel = world.fake, world.channels.take()
    prompt = "A story that outlasts its token"
    pieces = [f"part{i} " for i in range(30)]
    world.answers.add(prompt, workers_stream(pieces, delay=0.05))
    inter = await fake.slash("chat", {"prompt": prompt}, channel=channel)
    message = await fake.wait_until(
        lambda: next((m for m in fake.bot_messages(channel) if "part" in text_of(m)), None),
        20,
        what="the reply streaming",
    )
    fake.expire(inter)  # Discord now answers 50027 on the interaction's webhook
    expired_at = time.monotonic()
    final = await fake.wait_until(lambda: fake.finished(channel), 20, what="the reply")
    assert final["id"] == message["id"]
    assert text_of(final) == "".join(pieces).strip()  # nothing lost in the switch
    refused = [c for c in fake.calls_to("followup.edit") if c.at > expired_at and c.status == 401]
    assert len(refused) <= 1  # one refusal, then the bot token
    assert not [c for c in fake.calls_to("followup.edit") if refused and c.at > refused[0].at]
    later = [c for c in fake.calls_to("message.edit") if c.params["message"] == message["id"]]
    assert later and text_of(later[-1].body) == text_of(final)
    await logged(world, "interaction token expired")


async def test_when_discord_refuses_the_thread_the_reply_still_arrives_whole(
    world: World,
) -> None:
    fake, channel = world.fake, world.channels.take()
    answer = "\n\n".join(f"Paragraph {i}: " + "words " * 60 for i in range(8))
    assert 2000 < len(answer) < 4000  # two messages
    world.answers.add("No room for threads", workers_stream([answer[:900], answer[900:]]))
    fake.max_active_threads = fake.active_threads(fake.guild.id)  # 160006 from now on
    try:
        await fake.slash("chat", {"prompt": "No room for threads"}, channel=channel)
        final = await fake.wait_until(lambda: fake.finished(channel), 20, what="the reply")
    finally:
        fake.max_active_threads = 1000
    refused = [c for c in fake.calls_to("thread.from_message") if c.status == 400]
    assert refused and thread_of(fake, channel) is None
    parts = [text_of(m) for m in fake.bot_messages(channel) if "Paragraph" in text_of(m)]
    assert len(parts) == 2 and parts[-1] == text_of(final)
    assert " ".join(" ".join(parts).split()) == " ".join(answer.split())
    await logged(world, "could not open a thread")


async def test_stop_ends_the_stream_keeps_the_partial_text_and_stores_it_interrupted(
    world: World,
) -> None:
    fake, channel = world.fake, world.channels.take()
    message = await streaming_reply(world, channel, "Tell me a long story, then stop")
    stop_id = fake.custom_ids(message)[0]
    click = await fake.click(message["id"], stop_id, user="alice")
    final = await fake.wait_until(lambda: fake.finished(channel), 20, what="the stopped reply")
    assert click.ack_type == 6 and click.acked_at is not None
    assert click.acked_at - click.created < 3.0
    assert text_of(final).startswith("chunk0") and text_of(final).endswith("_(stopped)_")
    assert "chunk39" not in text_of(final)
    kept = text_of(final).removesuffix("_(stopped)_").strip()

    def stored() -> Any:
        (row,) = world.bot.rows(
            "SELECT status, content, role FROM messages WHERE id = ?", turn_of(stop_id)
        )
        return row if row["status"] != "streaming" else None

    # the final edit is on screen a moment before the engine finishes the row
    row = await fake.wait_until(stored, 10, what="the stored turn")
    assert (row["role"], row["status"]) == ("assistant", "interrupted")
    assert row["content"].strip() == kept  # what the user saw is what was stored


async def test_regenerate_posts_a_new_answer_stored_as_a_sibling(world: World) -> None:
    fake, channel = world.fake, world.channels.take()
    prompt = "Give me an answer to regenerate"
    world.answers.add(prompt, workers_stream(["First answer."]), workers_stream(["Second answer."]))
    await fake.slash("chat", {"prompt": prompt}, channel=channel)
    first = await fake.wait_until(lambda: fake.finished(channel), 20, what="the first answer")
    regen_id = fake.custom_ids(first)[0]
    click = await fake.click(first["id"], regen_id, user="alice")
    thread = first["id"]
    second = await fake.wait_until(lambda: fake.finished(thread), 20, what="the new answer")
    assert click.acked_at is not None and click.acked_at - click.created < 3.0
    assert text_of(second) == "Second answer."
    assert text_of(fake.messages[first["id"]]) == "First answer."  # the old one stays
    old, new = turn_of(regen_id), turn_of(fake.custom_ids(second)[0])

    def stored() -> Any:
        found = world.bot.rows(
            "SELECT id, parent_id, content, status FROM messages WHERE id IN (?, ?)", old, new
        )
        done = all(r["status"] != "streaming" for r in found)
        return {r["id"]: r for r in found} if done else None

    rows = await fake.wait_until(stored, 10, what="the stored turns")
    assert rows[new]["parent_id"] == rows[old]["parent_id"] is not None
    assert (rows[new]["content"], rows[new]["status"]) == ("Second answer.", "complete")
    sent = world.answers.calls_for(prompt)[-1].body["messages"]
    assert [m["content"] for m in sent if m["role"] != "system"] == [prompt]  # no old answer


async def test_buttons_pressed_by_someone_else_say_not_yours_privately_and_do_nothing(
    world: World,
) -> None:
    fake, channel = world.fake, world.channels.take()
    prompt = "A long story that bob cannot stop"
    message = await streaming_reply(world, channel, prompt)
    stop = await fake.click(message["id"], fake.custom_ids(message)[0], user="bob")
    await fake.wait_until(lambda: stop.original_id is not None, 10, what="bob's notice")
    notice = fake.messages[stop.original_id]  # type: ignore[index]
    assert stop.ack_type == 4 and notice["flags"] & 64
    assert text_of(notice) == "Only the person who asked can stop this reply."
    final = await fake.wait_until(lambda: fake.finished(channel), 20, what="the whole reply")
    assert text_of(final).endswith("chunk39")  # bob's click stopped nothing
    regen = await fake.click(final["id"], fake.custom_ids(final)[0], user="bob")
    await fake.wait_until(
        lambda: (
            fake.messages.get(regen.original_id or "", {}).get("content", "")
            == "Only the person who asked can regenerate this."
        ),
        10,
        what="bob's regenerate notice",
    )
    assert fake.messages[regen.original_id]["flags"] & 64  # type: ignore[index]
    await asyncio.sleep(0.3)
    assert len(world.answers.calls_for(prompt)) == 1  # nothing regenerated


async def test_a_provider_failing_before_the_first_token_falls_back(world: World) -> None:
    fake, channel = world.fake, world.channels.take()
    world.answers.add("Fall back please", workers_error(3040))  # transient, no Retry-After
    fallback = openai_stream(["From ", "the fallback."])
    world.answers.add("Fall back please", fallback, family="openai")
    await fake.slash("chat", {"prompt": "Fall back please"}, channel=channel)
    final = await fake.wait_until(lambda: fake.finished(channel), 20, what="the reply")
    assert text_of(final) == "From the fallback."
    assert len(world.answers.calls_for("Fall back please")) == 1
    assert len(world.answers.calls_for("Fall back please", "openai")) == 1


async def test_a_failure_after_output_keeps_the_partial_text_with_a_notice(world: World) -> None:
    fake, channel = world.fake, world.channels.take()
    world.answers.add(
        "Fail midway", workers_stream(["Partial ", "answer"], usage=None, done=False).dropped()
    )
    await fake.slash("chat", {"prompt": "Fail midway"}, channel=channel)
    final = await fake.wait_until(lambda: fake.finished(channel), 20, what="the reply")
    assert text_of(final).startswith("Partial answer\n\n_(reply interrupted:")
    assert "Traceback" not in text_of(final)
    assert world.answers.calls_for("Fail midway", "openai") == []  # no fallback after output


async def test_ten_conversations_in_ten_channels_finish_exactly_and_independently(
    world: World,
) -> None:
    fake = world.fake
    channels: list[str] = world.channels.take(10)
    for i in range(10):
        pieces = [f"Answer to question {i}: ", "one ", "two ", "three."]
        world.answers.add(f"question {i}", workers_stream(pieces, delay=0.05 * (1 + i % 3)))
    interactions = await asyncio.gather(
        *(
            fake.slash("chat", {"prompt": f"question {i}"}, channel=c)
            for i, c in enumerate(channels)
        )
    )
    finals = [
        await fake.wait_until(lambda c=c: fake.finished(c), 30, what=f"reply {i}")
        for i, c in enumerate(channels)
    ]
    for i, (channel, final, inter) in enumerate(zip(channels, finals, interactions, strict=True)):
        assert inter.ack_type == 4 and inter.acked_at is not None
        assert inter.acked_at - inter.created < 3.0
        assert text_of(final) == f"Answer to question {i}: one two three."
        thread = fake.channels[final["id"]]
        assert (thread["name"], thread["parent_id"]) == (f"question {i}", channel)
        assert [m["id"] for m in fake.bot_messages(channel) if m["id"] in fake.channels] == [
            final["id"]
        ]
    assert not [c for c in fake.rate_limited if c.params.get("channel") in channels]
    echoed = {
        re.sub(r"^\*\*\w+\*\* asked: ", "", text_of(fake.messages[i.original_id]))
        for i in interactions
        if i.original_id
    }
    assert echoed == {f"question {i}" for i in range(10)}


async def test_a_reasoning_model_shows_thinking_with_stop_then_only_its_answer(
    world: World,
) -> None:
    fake, channel = world.fake, world.channels.take()
    thoughts = [
        sse({"choices": [{"index": 0, "delta": {"reasoning_content": f"step {i}. "}}]})
        for i in range(8)
    ]
    answer = [sse({"response": "The answer "}), sse({"response": "is 4."}), sse("[DONE]")]
    world.answers.add("Think about 2+2", raw_stream(*thoughts, *answer, delay=0.3))
    before = len(fake.calls)
    await fake.slash("chat", {"prompt": "Think about 2+2"}, channel=channel)
    final = await fake.wait_until(lambda: finished_anywhere(fake, channel), 20, what="the reply")
    assert text_of(final) == "The answer is 4."
    frames = [
        text_of(c.body)
        for c in fake.calls[before:]
        if isinstance(c.body, dict) and "thinking…" in text_of(c.body)
    ]
    assert frames and all(re.fullmatch(r"_thinking… \d+ s_", frame) for frame in frames)
    assert len(set(frames)) >= 2  # the seconds went on while it thought
    shown = [text_of(c.body) for c in fake.calls[before:] if isinstance(c.body, dict)]
    assert not any("step " in text for text in shown)  # the reasoning itself never
    calls = [c for c in fake.calls[before:] if isinstance(c.body, dict)]
    thinking_call = next(c for c in calls if "thinking…" in text_of(c.body))
    assert "parley:stop:" in str(thinking_call.body.get("components"))  # Stop while it thinks


@pytest.mark.parametrize("shape", list(SHAPES))
async def test_every_stream_shape_shows_only_the_answer_or_says_why(
    world: World, shape: str
) -> None:
    fake, channel = world.fake, world.channels.take()
    events, shown = SHAPES[shape]
    prompt = f"Shape {shape}"
    world.answers.add(prompt, raw_stream(*events, sse("[DONE]")))
    await fake.slash("chat", {"prompt": prompt}, channel=channel)
    final = await fake.wait_until(lambda: finished_anywhere(fake, channel), 20, what="the reply")
    assert text_of(final) == shown
