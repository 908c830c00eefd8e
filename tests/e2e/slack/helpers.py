"""Reading a conversation back out of the Slack fake."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from tests.fakes.slack import Message, SlackFake

if TYPE_CHECKING:
    from tests.e2e.slack.conftest import SlackBot


def question_thread(fake: SlackFake, index: int = 0) -> str:
    """The ts of the `index`-th question /chat quoted in a channel (its answer's thread)."""
    posts = [c for c in fake.calls_to("chat.postMessage") if c.ok and not c.args.get("thread_ts")]
    return str(posts[index].response["ts"])


def finished(message: Message) -> bool:
    return any(b.get("action_id") == "parley_regenerate" for b in message.buttons())


async def wait_answer(
    fake: SlackFake, channel: str, thread: str | None, *, count: int = 1, within: float = 20.0
) -> list[Message]:
    """Wait for `count` finished answers in the thread; returns the bot's messages there."""

    def done() -> bool:
        return sum(finished(m) for m in fake.bot_replies(channel, thread)) >= count

    await fake.wait_for(done, within)
    return fake.bot_replies(channel, thread)


def words(text: str) -> str:
    """Text with whitespace runs collapsed: splitting into messages drops the break whitespace."""
    return re.sub(r"\s+", " ", text).strip()


async def run_command(
    bot: SlackBot,
    command: str,
    text: str,
    *,
    user: str,
    channel: str,
    team: str | None = None,
    within: float = 15.0,
) -> dict[str, Any]:
    """Send a slash command and return the first thing the bot posted to its response_url."""
    fake = bot.fake
    before = set(fake.response_urls)
    sent = await bot.sender.command(command, text, user=user, channel=channel, team=team)
    assert sent.status == 200, sent.body
    assert sent.elapsed < 3.0  # acknowledged at once, the work done after
    [rid] = set(fake.response_urls) - before
    record = fake.response_urls[rid]
    await fake.wait_for(lambda: record.posts, within)
    return record.posts[0]


async def ask(bot: SlackBot, text: str, *, user: str, channel: str, team: str | None = None) -> str:
    """/chat in `channel`; waits for the finished answer and returns its thread's ts."""
    fake = bot.fake
    quoted = re.sub(r"(?<!\S)persona:\S+\s*", "", text)  # options are not quoted

    def question() -> str | None:
        for m in fake.messages.values():
            if m.channel == channel and m.is_bot and not m.thread_ts and quoted in m.text:
                return m.ts
        return None

    await bot.sender.command("/chat", text, user=user, channel=channel, team=team)
    await fake.wait_for(question)
    thread = question()
    assert thread is not None
    await wait_answer(fake, channel, thread)
    return thread


async def say_in_thread(
    bot: SlackBot, text: str, *, user: str, channel: str, thread: str, mention: bool
) -> None:
    """A reply in a thread, as Slack sends it: a `message` event (plus app_mention if it
    mentions the bot, both for the same message, to exercise the dedupe)."""
    sender = bot.sender
    if mention:
        event = sender.mention(channel, user, text, thread_ts=thread)
        await sender.event(event)
        await sender.event(event | {"type": "message", "channel_type": "channel"})
    else:
        await sender.event(sender.message(channel, user, text, thread_ts=thread))


def ephemerals_to(fake: SlackFake, user: str, channel: str) -> list[str]:
    return [e.text for e in fake.ephemerals if e.user == user and e.channel == channel]
