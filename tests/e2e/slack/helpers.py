"""Reading a conversation back out of the Slack fake."""

from __future__ import annotations

import re

from tests.fakes.slack import Message, SlackFake


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
