"""Issue 6's conversation commands on Slack, through one real `python -m bot` for the module.

/history (pages, permalinks), archive / export / new by thread keyword and by id, and isolation:
other users and other workspaces get nothing, whatever ids they pass. Each test uses its own
users and channels, so tests do not depend on each other's order.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio

from tests.e2e.slack.conftest import SlackBot, launch_bot, stop_bot
from tests.e2e.slack.helpers import (
    ask,
    ephemerals_to,
    run_command,
    say_in_thread,
    wait_answer,
)
from tests.fakes.llm_server import LLMFake
from tests.fakes.slack import SlackFake

pytestmark = pytest.mark.asyncio(loop_scope="module")

OTHER_TEAM = "T0002"
ADMIN = "U0CONVADMIN"
NOT_YOURS = "There is no conversation of yours here."


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def bot(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[SlackBot]:
    tmp = tmp_path_factory.mktemp("slack-conversations")
    async with SlackFake() as fake, LLMFake() as llm:
        bot = await launch_bot(llm, fake, tmp, HISTORY_PAGE_SIZE="2", SLACK_ADMIN_USERS=ADMIN)
        try:
            yield bot
        finally:
            await stop_bot(bot)
            assert "Traceback" not in bot.output(), bot.output()[-3000:]


def link(channel: str, thread: str) -> str:
    return f"https://fake.slack.com/archives/{channel}/p{thread.replace('.', '')}"


def entries(post: dict[str, object]) -> list[str]:
    """The numbered lines of a /history page, else all its lines."""
    blocks = post["blocks"]
    assert isinstance(blocks, list)
    lines = [
        line for b in blocks if b["type"] == "section" for line in b["text"]["text"].split("\n")
    ]
    return [line for line in lines if re.match(r"[0-9]+\. ", line)] or lines


def buttons(post: dict[str, object]) -> list[dict[str, str]]:
    blocks = post["blocks"]
    assert isinstance(blocks, list)
    return [e for b in blocks if b["type"] == "actions" for e in b["elements"]]


async def conversation_id(bot: SlackBot, user: str, channel: str, title: str) -> int:
    post = await run_command(bot, "/history", "", user=user, channel=channel)
    [entry] = [e for e in entries(post) if title in e]
    return int(entry.rsplit("id `", 1)[1].rstrip("`"))


async def quiet(bot: SlackBot, seconds: float = 1.0) -> tuple[int, int]:
    """Let anything in flight land; returns (LLM calls, bot messages) after."""
    await asyncio.sleep(seconds)
    return len(bot.llm.calls), sum(m.is_bot for m in bot.fake.messages.values())


async def test_history_lists_only_my_conversations_here_newest_first_with_pages(
    bot: SlackBot,
) -> None:
    me, other, channel = "U0HIST", "U0HISTB", "C0HIST"
    threads = [await ask(bot, f"history question {i}", user=me, channel=channel) for i in (1, 2, 3)]
    await ask(bot, "someone else's question", user=other, channel=channel)
    await ask(bot, "another workspace question", user=me, channel="C0ELSE", team=OTHER_TEAM)

    first = await run_command(bot, "/history", "", user=me, channel="C0ANYWHERE")
    assert first["response_type"] == "ephemeral"
    shown = entries(first)
    assert len(shown) == 2  # HISTORY_PAGE_SIZE=2
    assert "history question 3" in shown[0] and "history question 2" in shown[1]
    assert f"<{link(channel, threads[2])}|" in shown[0]
    assert f"<{link(channel, threads[1])}|" in shown[1]
    assert "2 messages" in shown[0]
    [next_button] = buttons(first)
    assert (next_button["text"]["text"], next_button["value"]) == ("Next", "2")

    # Next: the same ephemeral message is replaced by page 2.
    url = bot.fake.new_response_url("C0ANYWHERE", me)
    rid = url.rsplit("/", 1)[1]
    await bot.sender.click_ephemeral(next_button, user=me, channel="C0ANYWHERE", response_url=url)
    await bot.fake.wait_for(lambda: bot.fake.response_urls[rid].posts)
    second = bot.fake.response_urls[rid].posts[0]
    assert second["replace_original"] is True
    [only] = entries(second)
    assert "history question 1" in only and link(channel, threads[0]) in only
    assert [b["text"]["text"] for b in buttons(second)] == ["Previous"]

    # Other users' and other workspaces' conversations never show.
    everything = " ".join([*shown, only])
    assert "someone else" not in everything and "another workspace" not in everything
    theirs = entries(await run_command(bot, "/history", "", user=other, channel=channel))
    assert len(theirs) == 1 and "someone else's question" in theirs[0]
    elsewhere = entries(
        await run_command(bot, "/history", "", user=me, channel="C0ELSE", team=OTHER_TEAM)
    )
    assert len(elsewhere) == 1 and "another workspace question" in elsewhere[0]


async def test_archive_in_the_thread_stops_answers_and_leaves_history(bot: SlackBot) -> None:
    me, channel = "U0ARCH", "C0ARCH"
    thread = await ask(bot, "archive me later", user=me, channel=channel)
    await say_in_thread(bot, "archive", user=me, channel=channel, thread=thread, mention=True)
    fake = bot.fake
    await fake.wait_for(
        lambda: any("archived this" in m.text for m in fake.thread(channel, thread))
    )
    await fake.wait_for(lambda: ephemerals_to(fake, me, channel))
    assert ephemerals_to(fake, me, channel) == [
        "Archived: I no longer answer in that conversation, and it left /history."
    ]
    llm_calls, _ = await quiet(bot, 0.5)
    notes = [m for m in fake.thread(channel, thread) if "archived this" in m.text]
    assert len(notes) == 1  # app_mention + message for one message: archived once
    assert llm_calls == len(bot.llm.calls)

    # A plain reply in the archived thread gets nothing at all.
    _, bot_messages = await quiet(bot, 0)
    await say_in_thread(
        bot, "are you there?", user=me, channel=channel, thread=thread, mention=False
    )
    assert await quiet(bot) == (llm_calls, bot_messages)
    # A mention is told why, still without asking the model.
    await say_in_thread(bot, "hello?", user=me, channel=channel, thread=thread, mention=True)
    await fake.wait_for(lambda: any("is archived" in t for t in ephemerals_to(fake, me, channel)))
    assert len(bot.llm.calls) == llm_calls

    history = entries(await run_command(bot, "/history", "", user=me, channel=channel))
    assert not any("archive me later" in e for e in history)


async def test_export_uploads_a_markdown_file_of_the_turns(bot: SlackBot) -> None:
    me, channel = "U0EXPORT", "C0EXPORT"
    fake = bot.fake
    thread = await ask(bot, "export question one", user=me, channel=channel)
    await say_in_thread(
        bot, "export follow up", user=me, channel=channel, thread=thread, mention=False
    )
    await wait_answer(fake, channel, thread, count=2)

    await say_in_thread(bot, "export", user=me, channel=channel, thread=thread, mention=True)
    await fake.wait_for(lambda: fake.shared_files(channel, thread))
    [exported] = fake.shared_files(channel, thread)
    assert exported.filename.endswith(".md") and exported.filename.startswith("parley-")
    assert exported.initial_comment == f"<@{me}> exported this conversation."
    markdown = (exported.data or b"").decode()
    assert markdown.startswith("# export question one")
    answers = [m.text for m in fake.bot_replies(channel, thread) if m.streamed or m.buttons()]
    for text in ("export question one", "export follow up", *answers):
        assert text in markdown
    assert markdown.count(f"**{me}**") == 2 and markdown.count("**assistant**") == 2

    # By id from anywhere in the workspace: the file goes to the conversation's thread.
    number = await conversation_id(bot, me, "C0ELSEWHERE", "export question one")
    post = await run_command(bot, "/export", f"#{number}", user=me, channel="C0ELSEWHERE")
    assert post["text"].startswith("Here is the conversation as Markdown: `parley-")
    assert post["text"].endswith("It is in the conversation's thread.")
    assert len(fake.shared_files(channel, thread)) == 2


async def test_new_starts_a_fresh_context_in_the_same_thread(bot: SlackBot) -> None:
    me, channel = "U0NEW", "C0NEW"
    fake = bot.fake
    thread = await ask(bot, "remember the number 41", user=me, channel=channel)
    await say_in_thread(bot, "new", user=me, channel=channel, thread=thread, mention=True)
    await fake.wait_for(
        lambda: any("fresh context" in m.text for m in fake.thread(channel, thread))
    )
    await say_in_thread(
        bot, "which number?", user=me, channel=channel, thread=thread, mention=False
    )
    await fake.wait_for(
        lambda: any(
            c.body and c.body["messages"][-1]["content"] == "which number?" for c in bot.llm.calls
        )
    )
    [call] = [
        c for c in bot.llm.calls if c.body and c.body["messages"][-1]["content"] == "which number?"
    ]
    sent = " ".join(str(m["content"]) for m in call.body["messages"])
    assert "41" not in sent
    assert [m["role"] for m in call.body["messages"]] == ["system", "user"]


async def test_other_users_and_workspaces_cannot_touch_a_conversation(bot: SlackBot) -> None:
    alice, bob, channel = "U0ISOA", "U0ISOB", "C0ISO"
    fake = bot.fake
    thread = await ask(bot, "alice private plans", user=alice, channel=channel)
    number = await conversation_id(bot, alice, channel, "alice private plans")

    for verb in ("/export", "/archive", "/new"):
        for guess in (number, number + 1, number + 1000, 1):
            post = await run_command(bot, verb, str(guess), user=bob, channel=channel)
            assert post["text"] == NOT_YOURS, (verb, guess, post)
        # Alice herself, through another workspace's request.
        post = await run_command(
            bot, verb, str(number), user=alice, channel=channel, team=OTHER_TEAM
        )
        assert post["text"] == NOT_YOURS
    assert not fake.shared_files(channel, thread)

    # In her thread, Bob's keywords are refused and change nothing.
    await say_in_thread(bot, "archive", user=bob, channel=channel, thread=thread, mention=True)
    await say_in_thread(bot, "export", user=bob, channel=channel, thread=thread, mention=True)
    await fake.wait_for(lambda: len(ephemerals_to(fake, bob, channel)) >= 2)
    assert sorted(ephemerals_to(fake, bob, channel)) == [
        "Only the person who started this conversation, or an admin, can archive it.",
        "This conversation belongs to someone else.",
    ]
    assert not fake.shared_files(channel, thread)
    history = entries(await run_command(bot, "/history", "", user=alice, channel=channel))
    assert any("alice private plans" in e for e in history)
    assert not entries(await run_command(bot, "/history", "", user=bob, channel=channel))[0].count(
        "alice"
    )


async def test_an_admin_archives_someone_elses_thread(bot: SlackBot) -> None:
    """As on Discord: a conversation is its owner's to archive, or an admin's."""
    owner, channel = "U0ARCHOWNER", "C0ARCH"
    thread = await ask(bot, "a thread to moderate", user=owner, channel=channel)
    await say_in_thread(bot, "archive", user=ADMIN, channel=channel, thread=thread, mention=True)
    await bot.fake.wait_for(lambda: ephemerals_to(bot.fake, ADMIN, channel))
    assert ephemerals_to(bot.fake, ADMIN, channel) == [
        "Archived: I no longer answer in that conversation, and it left /history."
    ]
    history = entries(await run_command(bot, "/history", "", user=owner, channel=channel))
    assert not any("a thread to moderate" in e for e in history)


async def test_commands_without_a_target_explain_how_to_name_one(bot: SlackBot) -> None:
    for verb in ("/archive", "/export", "/new"):
        post = await run_command(bot, verb, "", user="U0HELP", channel="C0HELP")
        said = post["text"]
        assert (
            f"Give {verb} the id /history shows, or say `@Parley {verb[1:]}` in its thread" in said
        )
    post = await run_command(bot, "/history", "soon", user="U0HELP", channel="C0HELP")
    assert post["text"] == (
        "`page` must be a whole number from 1 to 10,000 (got 'soon').\nUsage: `/history [page]`"
    )
    post = await run_command(bot, "/history", "", user="U0HELP", channel="C0HELP")
    assert entries(post) == ["You have no conversations here yet. Start one with /chat."]


async def test_search_finds_my_words_in_this_workspace_with_permalinks_and_nobody_elses(
    bot: SlackBot,
) -> None:
    me, other, channel = "U0SRCH", "U0SRCHB", "C0SRCH"
    mine = await ask(bot, "my nebula <camera> & lens", user=me, channel=channel)
    await say_in_thread(bot, "nebula from someone else", user=other, channel=channel, thread=mine,
                        mention=True)  # fmt: skip
    await ask(bot, "other person's nebula", user=other, channel=channel)
    await ask(bot, "nebula in another workspace", user=me, channel="C0SRCHELSE", team=OTHER_TEAM)
    await quiet(bot)

    post = await run_command(bot, "/search", "Nebulae", user=me, channel="C0ANYWHERE")
    assert post["response_type"] == "ephemeral"
    shown = entries(post)
    [hit] = [e for e in shown if "you:" in e]
    assert f"<{link(channel, mine)}|my nebula &lt;camera&gt; &amp; lens>" in hit
    assert "you: my *nebula* &lt;camera&gt; &amp; lens" in hit  # inert text, the word bold
    everything = " ".join(shown)
    assert "someone else" not in everything and "other person" not in everything
    assert "another workspace" not in everything

    post = await run_command(bot, "/search", "nebula", user=other, channel=channel)
    assert "camera" not in " ".join(entries(post))
    post = await run_command(bot, "/search", "nebula", user=me, channel="C0X", team=OTHER_TEAM)
    assert "another workspace" in " ".join(entries(post))
    post = await run_command(bot, "/search", "", user=me, channel=channel)
    assert "words" in post["text"]
