"""/chat through the real discord.py client in process: the details of one streamed reply.

The rest of issue 3's list runs through the real process in tests/e2e/discord/test_chat.py."""

from __future__ import annotations

import pytest

from adapters.discord import turns
from adapters.discord.surface import MAX_CHARS
from tests.fakes.discord import FakeDiscord
from tests.fakes.discord.payloads import IS_COMPONENTS_V2, text_of
from tests.fakes.llm_server import LLMFake, workers_stream
from tests.integration.discord.conftest import Running


async def test_chat_answers_with_its_echo_streams_by_edits_and_opens_a_thread(
    discord_fake: FakeDiscord, llm_fake: LLMFake, bot: Running
) -> None:
    pieces = ["The ", "answer ", "is ", "forty-", "two."]
    llm_fake.queue("workers", workers_stream(pieces, delay=0.15))
    channel = discord_fake.channel_ids[0]
    inter = await discord_fake.slash("chat", {"prompt": "What is the answer?"})
    final = await discord_fake.wait_until(lambda: discord_fake.finished(channel), what="reply")

    # answered with the echo at once (no defer and edit: the webhook's calls go to the reply)
    assert inter.ack_type == 4 and inter.acked_at is not None
    assert inter.acked_at - inter.created < 3.0
    assert text_of(discord_fake.messages[inter.original_id]).endswith("asked: What is the answer?")
    assert not discord_fake.calls_to("original.edit")
    assert text_of(final) == "The answer is forty-two."
    assert discord_fake.custom_ids(final) == [f"parley:regenerate:{2}"]
    thread = discord_fake.channels[final["id"]]  # thread id == message id
    assert thread["name"] == "What is the answer?" and thread["parent_id"] == channel
    # the reply is the interaction's followup, streamed through its webhook with its token
    (created,) = discord_fake.calls_to("followup.create")
    assert created.params["token"] == inter.token and inter.followups == [final["id"]]
    assert final["webhook_id"] == discord_fake.app_id
    edits = [
        c for c in discord_fake.calls_to("followup.edit") if c.params["message"] == final["id"]
    ]
    assert len(edits) >= 2  # streamed: at least one interim frame, then the final text
    assert all(c.params["token"] == inter.token for c in edits)
    interim = edits[0].body
    assert text_of(interim).endswith("▌")
    assert interim["flags"] & IS_COMPONENTS_V2 and "content" not in interim  # a Text Display
    assert discord_fake.custom_ids(interim) == ["parley:stop:2"]
    assert not discord_fake.rate_limited
    assert not discord_fake.calls_to("message.edit")  # nothing under the global limit

    # a follow-up in the thread needs no mention, and its prompt carries the earlier turns
    llm_fake.queue("workers", workers_stream(["Because ", "Douglas Adams."]))
    await discord_fake.say("Why that number?", channel=thread["id"])
    second = await discord_fake.wait_until(
        lambda: discord_fake.finished(thread["id"]), what="thread reply"
    )
    assert text_of(second) == "Because Douglas Adams."
    messages = llm_fake.calls_to("workers")[-1].body["messages"]
    assert [m["content"] for m in messages if m["role"] != "system"] == [
        "What is the answer?",
        "The answer is forty-two.",
        "Why that number?",
    ]


async def test_a_reply_whose_token_is_nearly_spent_is_edited_with_the_bot_token(
    discord_fake: FakeDiscord, llm_fake: LLMFake, bot: Running, monkeypatch: pytest.MonkeyPatch
) -> None:
    # as if the /chat were already 15 minutes old when the reply began: no webhook edit at all
    monkeypatch.setattr(turns, "TOKEN_MARGIN", 15 * 60 + 60)
    pieces = ["Late ", "but ", "whole."]
    llm_fake.queue("workers", workers_stream(pieces, delay=0.15))
    channel = discord_fake.channel_ids[0]
    inter = await discord_fake.slash("chat", {"prompt": "Answer late"})
    final = await discord_fake.wait_until(lambda: discord_fake.finished(channel), what="reply")
    assert text_of(final) == "Late but whole." and inter.followups == [final["id"]]
    assert not discord_fake.calls_to("followup.edit")
    edits = [c for c in discord_fake.calls_to("message.edit") if c.params["message"] == final["id"]]
    assert len(edits) >= 2
    assert all(c.headers["authorization"] == f"Bot {discord_fake.token}" for c in edits)


async def test_a_reply_of_emoji_splits_below_discords_byte_limit_and_arrives_whole(
    discord_fake: FakeDiscord, llm_fake: LLMFake, bot: Running
) -> None:
    """4,000 characters of emoji are 16,000 bytes, past the size at which Discord answers 500
    (the fake enforces it): a reply message holds at most MAX_CHARS, which no text can push
    past it."""
    answer = "😀" * 3000
    llm_fake.queue("workers", workers_stream([answer[i : i + 500] for i in range(0, 3000, 500)]))
    channel = discord_fake.channel_ids[0]
    inter = await discord_fake.slash("chat", {"prompt": "Emoji, please"})
    await discord_fake.wait_until(lambda: inter.followups, what="the placeholder")
    thread = inter.followups[0]  # the thread's id is its starter message's
    await discord_fake.wait_until(lambda: discord_fake.finished(thread), what="the reply's end")
    first = discord_fake.messages[thread]
    assert first["channel_id"] == channel
    parts = [text_of(first), *(text_of(m) for m in discord_fake.bot_messages(thread))]
    assert "".join(parts) == answer
    assert 2000 < len(parts[0]) <= MAX_CHARS
    assert not [c for c in discord_fake.calls if c.status >= 400]
