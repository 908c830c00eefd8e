"""Issue 6 on Discord: /history /archive /export /new, /persona, /usage, through one real
`python -m bot` process for the module, against the fake Discord (two servers) and the LLM fake.

Every test acts as users of its own (`World.user`), in channels of its own, so the shared process
and database do not couple tests. carol holds the admin role (DISCORD_ADMIN_ROLE=admin).
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

from bot.engine.chat import REFUSAL_ARCHIVED
from tests.e2e.discord.conftest import BotProcess, Channels, discord_env
from tests.fakes.discord import FakeDiscord, Interaction
from tests.fakes.discord.payloads import EPHEMERAL, LOADING, text_of
from tests.fakes.discord.records import Guild
from tests.fakes.llm_server import Call, LLMFake, workers_stream

pytestmark = pytest.mark.asyncio(loop_scope="module")

PAGE_SIZE = 2
_names = itertools.count()


class World:
    def __init__(self, fake: FakeDiscord, llm: LLMFake, bot: BotProcess, other: Guild) -> None:
        self.fake = fake
        self.llm = llm
        self.bot = bot
        self.other = other  # a second server the bot is in
        self.channels = Channels(fake)

    def user(self, role: str = "member") -> str:
        name = f"user{next(_names)}"
        self.fake.add_user(name, [role])
        return name

    def uid(self, name: str) -> str:
        return str(self.fake.users[name]["id"])


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def world(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[World]:
    tmp: Path = tmp_path_factory.mktemp("discord-conversations")
    async with FakeDiscord(channels=16) as fake, LLMFake() as llm:
        other = fake.add_guild("Other Guild", channels=2)
        env = discord_env(
            fake, llm, tmp, DISCORD_ADMIN_ROLE="admin", HISTORY_PAGE_SIZE=str(PAGE_SIZE)
        )
        bot = await BotProcess(fake, env, tmp).start()
        try:
            yield World(fake, llm, bot, other)
        finally:
            await bot.stop()
            assert "Traceback" not in bot.logs(), bot.logs()[-3000:]


# -- helpers ---------------------------------------------------------------------------------


def acked_in_time(inter: Interaction) -> bool:
    return inter.acked_at is not None and inter.acked_at - inter.created < 3.0


async def private(fake: FakeDiscord, inter: Interaction, within: float = 20) -> dict[str, Any]:
    """The ephemeral answer an interaction ended with (once it is no longer 'thinking')."""

    def done() -> dict[str, Any] | None:
        found = fake.messages.get(inter.original_id or "")
        return None if found is None or found["flags"] & LOADING else found

    message: dict[str, Any] = await fake.wait_until(done, within, what="a private answer")
    assert message["flags"] & EPHEMERAL, "command answers are private"
    assert acked_in_time(inter)
    return message


async def command(
    world: World, name: str, options: dict[str, Any] | None = None, **kwargs: Any
) -> str:
    inter = await world.fake.slash(name, options or {}, **kwargs)
    return str((await private(world.fake, inter))["content"])


async def chat(world: World, channel: str, prompt: str, *, user: str, **options: Any) -> str:
    """/chat in `channel`; waits for the finished reply and returns the thread it opened."""
    fake = world.fake
    before = set(fake.channels)
    await fake.slash("chat", {"prompt": prompt} | options, user=user, channel=channel)
    thread: str = await fake.wait_until(
        lambda: next((c for c in fake.channels if c not in before), None), 20, what="a thread"
    )
    await fake.wait_until(
        lambda: fake.finished(channel) or fake.finished(thread), 20, what="a finished reply"
    )
    return thread


async def say_in_thread(world: World, thread: str, text: str, *, user: str) -> None:
    """A message in a bot thread; waits until the bot has finished answering it."""
    fake = world.fake
    before = {m["id"] for m in fake.bot_messages(thread)}
    await fake.say(text, user=user, channel=thread)

    def answered() -> bool:
        new = [m for m in fake.bot_messages(thread) if m["id"] not in before]
        return any(
            any(c.startswith("parley:regenerate:") for c in fake.custom_ids(m))
            or "archived" in text_of(m)
            for m in new
        )

    await fake.wait_until(answered, 20, what=f"an answer to {text!r}")


def llm_calls(world: World, prompt: str) -> list[Call]:
    return [
        c
        for c in world.llm.calls_to("workers")
        if c.body and c.body["messages"][-1]["content"] == prompt
    ]


def model_of(call: Call) -> str:
    return str(call.params.get("model") or call.body.get("model") or call.path)


def conversation_id(world: World, thread: str) -> int:
    (row,) = world.bot.rows("SELECT id FROM conversations WHERE thread_id = ?", thread)
    return int(row["id"])


def link(guild: str, thread: str) -> str:
    return f"https://discord.com/channels/{guild}/{thread}"


# -- conversations ---------------------------------------------------------------------------


async def test_history_lists_only_your_conversations_here_newest_first_and_pages(
    world: World,
) -> None:
    fake = world.fake
    me, someone = world.user(), world.user()
    here, there = world.channels.take(2)
    threads = [await chat(world, here, f"history topic {n}", user=me) for n in range(3)]
    others = await chat(world, there, "someone else's topic", user=someone)
    elsewhere = await chat(world, world.other.channels[0], "other server topic", user=me)

    inter = await fake.slash("history", {}, user=me, channel=here)
    page1 = await private(fake, inter)
    text = text_of(page1)
    assert "history topic 2" in text and "history topic 1" in text
    assert text.index("history topic 2") < text.index("history topic 1")  # newest first
    assert "history topic 0" not in text  # on page 2 (2 per page)
    assert link(fake.guild.id, threads[2]) in text and link(fake.guild.id, threads[1]) in text
    assert "someone else's" not in text and others not in text
    assert "other server" not in text and elsewhere not in text
    assert fake.custom_ids(page1) == ["parley:history:2"]  # Next only

    click = await fake.click(page1["id"], "parley:history:2", user=me)
    page2 = await fake.wait_until(
        lambda: (
            "history topic 0" in text_of(fake.messages[page1["id"]]) and fake.messages[page1["id"]]
        ),
        10,
        what="page 2",
    )
    assert acked_in_time(click)
    assert link(fake.guild.id, threads[0]) in text_of(page2)
    assert "history topic 2" not in text_of(page2)
    assert fake.custom_ids(page2) == ["parley:history:1"]  # Previous only

    # In the other server, the same user sees only the conversation started there.
    text = await command(world, "history", user=me, channel=world.other.channels[0])
    assert "other server topic" in text and link(world.other.id, elsewhere) in text
    assert "history topic" not in text


async def test_archive_stops_answers_and_can_close_the_discord_thread(world: World) -> None:
    fake = world.fake
    me = world.user()
    channel = world.channels.take()
    thread = await chat(world, channel, "archive me later", user=me)

    text = await command(world, "archive", {"close_thread": True}, user=me, channel=thread)
    assert "Archived" in text and "thread is archived too" in text
    assert fake.channels[thread]["thread_metadata"]["archived"] is True

    said = [text_of(m) for m in fake.bot_messages(thread)]
    assert any(
        t.endswith("archived this conversation; I won't answer here any more.") for t in said
    )
    await fake.say("are you still there?", user=me, channel=thread)  # silence, as on Slack
    await asyncio.sleep(1.0)
    assert len(fake.bot_messages(thread)) == len(said)
    await fake.say("are you still there?", user=me, channel=thread, mention=True)
    await fake.wait_until(lambda: len(fake.bot_messages(thread)) > len(said), 20, what="why not")
    assert llm_calls(world, "are you still there?") == []  # no provider call after archiving
    assert text_of(fake.bot_messages(thread)[-1]) == REFUSAL_ARCHIVED
    assert "archive me later" not in await command(world, "history", user=me, channel=channel)


async def test_export_uploads_a_markdown_file_with_the_turns(world: World) -> None:
    fake = world.fake
    me = world.user()
    channel = world.channels.take()
    world.llm.queue("workers", workers_stream(["The answer ", "is EXPORT-42."]))
    thread = await chat(world, channel, "what should the export contain?", user=me)

    inter = await fake.slash("export", {}, user=me, channel=thread)
    message = await private(fake, inter)
    (attachment,) = message["attachments"]
    assert attachment["filename"].endswith(".md")
    (upload,) = [c for c in fake.calls_to("original.edit") if c.files and inter.token in c.path]
    ((name, data),) = upload.files
    markdown = data.decode()
    assert name == attachment["filename"]
    assert "what should the export contain?" in markdown
    assert "The answer is EXPORT-42." in markdown
    assert markdown.startswith("# ")

    # By id from /history, anywhere in the same server.
    ident = conversation_id(world, thread)
    inter = await fake.slash("export", {"conversation": ident}, user=me, channel=channel)
    assert (await private(fake, inter))["attachments"]


async def test_new_starts_a_fresh_context_in_the_same_thread(world: World) -> None:
    me = world.user()
    channel = world.channels.take()
    thread = await chat(world, channel, "remember the word BANANA", user=me)
    await say_in_thread(world, thread, "which word?", user=me)
    (before,) = llm_calls(world, "which word?")
    assert "BANANA" in str(before.body["messages"])

    text = await command(world, "new", user=me, channel=thread)
    assert "Fresh start" in text
    await say_in_thread(world, thread, "which word, now?", user=me)
    (after,) = llm_calls(world, "which word, now?")
    assert "BANANA" not in str(after.body["messages"])
    assert "which word?" not in str(after.body["messages"])


async def test_nobody_sees_exports_or_archives_another_users_or_servers_conversation(
    world: World,
) -> None:
    fake = world.fake
    owner, intruder = world.user(), world.user()
    channel = world.channels.take()
    thread = await chat(world, channel, "my private plans", user=owner)
    ident = conversation_id(world, thread)

    assert "my private plans" not in await command(world, "history", user=intruder, channel=channel)
    for guess in sorted({1, 2, ident - 1, ident, ident + 1, ident + 50} - {0}):
        for name in ("export", "archive"):
            inter = await fake.slash(name, {"conversation": guess}, user=intruder, channel=channel)
            answer = await private(fake, inter)
            assert answer["attachments"] == [], (name, guess)
            assert "no conversation of yours" in text_of(answer), (name, guess)
    refused = {
        "export": "belongs to someone else",
        "new": "belongs to someone else",
        "archive": "Only the person who started",
    }
    for name, why in refused.items():
        assert why in await command(world, name, user=intruder, channel=thread), name

    # The owner, from the other server: nothing of this server, even by its id.
    other = world.other.channels[1]
    assert "my private plans" not in await command(world, "history", user=owner, channel=other)
    inter = await fake.slash("export", {"conversation": ident}, user=owner, channel=other)
    assert (await private(fake, inter))["attachments"] == []
    text = await command(world, "archive", {"conversation": ident}, user=owner, channel=other)
    assert "no conversation of yours" in text

    (row,) = world.bot.rows("SELECT archived FROM conversations WHERE id = ?", ident)
    assert not row["archived"]  # every attempt failed: the owner's thread still answers
    await say_in_thread(world, thread, "still mine?", user=owner)
    assert len(llm_calls(world, "still mine?")) == 1


# -- personas --------------------------------------------------------------------------------


async def test_admins_manage_personas_and_chat_persona_shapes_the_request(world: World) -> None:
    fake = world.fake
    admin, member = world.user("admin"), world.user()
    channel = world.channels.take()
    spec = {
        "name": "pirate",
        "system_prompt": "You are PIRATE-PROMPT. Say arr.",
        "model": "mistral-7b",
        "temperature": 0.3,
        "max_tokens": 200,
    }

    refusal = await command(world, "persona", spec, sub="create", user=member, channel=channel)
    assert refusal == "Only admins can create personas."
    created = await command(world, "persona", spec, sub="create", user=admin, channel=channel)
    assert "Created **pirate**" in created
    again = await command(world, "persona", spec, sub="create", user=admin, channel=channel)
    assert "already exists" in again

    bad = {
        "temperature": (spec | {"temperature": 5.0}, "temperature must be between 0 and 2"),
        "max_tokens": (spec | {"name": "big", "max_tokens": 10**9}, "max_tokens must be between"),
        "name": (spec | {"name": "Bad Name!"}, "is not a persona name"),
        "model": (spec | {"name": "nomodel", "model": "gpt-99"}, "gpt-99"),
    }
    for what, (options, message) in bad.items():
        text = await command(world, "persona", options, sub="create", user=admin, channel=channel)
        assert message in text, what

    for name, options in {
        "edit": {"name": "pirate", "temperature": 1.0},
        "delete": {"name": "pirate"},
    }.items():
        text = await command(world, "persona", options, sub=name, user=member, channel=channel)
        assert text.startswith("Only admins can"), name
    edited = await command(
        world,
        "persona",
        {"name": "pirate", "temperature": 0.4},
        sub="edit",
        user=admin,
        channel=channel,
    )
    assert "temperature 0.4" in edited and "mistral-7b" in edited  # other fields kept

    listed = await command(world, "persona", {}, sub="list", user=member, channel=channel)
    assert "**pirate**" in listed and "PIRATE-PROMPT" in listed

    inter = await fake.slash(
        "chat", {"prompt": "", "persona": "pir"}, user=member, channel=channel, focused="persona"
    )
    await fake.wait_until(lambda: inter.choices is not None, 10, what="autocomplete")
    assert [c["value"] for c in inter.choices or []] == ["pirate"]

    await chat(world, channel, "hello captain", user=member, persona="pirate")
    (call,) = llm_calls(world, "hello captain")
    assert call.body["messages"][0] == {
        "role": "system",
        "content": "You are PIRATE-PROMPT. Say arr.",
    }
    assert call.body["temperature"] == 0.4
    assert call.body["max_tokens"] == 200
    assert "mistral" in model_of(call)

    inter = await fake.slash(
        "chat", {"prompt": "hi", "persona": "ghost"}, user=member, channel=channel
    )
    await fake.wait_until(
        lambda: (
            "no persona named 'ghost'"
            in fake.messages.get(inter.original_id or "", {}).get("content", "")
        ),
        10,
        what="the unknown persona refusal",
    )
    assert llm_calls(world, "hi") == []


async def test_a_channel_default_persona_applies_to_new_threads_and_use_switches(
    world: World,
) -> None:
    admin, member = world.user("admin"), world.user()
    channel, plain = world.channels.take(2)
    spec = {"name": "poet", "system_prompt": "You are POET-PROMPT."}
    await command(world, "persona", spec, sub="create", user=admin, channel=channel)

    text = await command(
        world, "persona", {"name": "poet"}, sub="default", user=member, channel=channel
    )
    assert text == "Only admins can set a channel's default persona."
    text = await command(
        world, "persona", {"name": "poet"}, sub="default", user=admin, channel=channel
    )
    assert "use **poet**" in text

    await chat(world, channel, "a verse please", user=member)
    (call,) = llm_calls(world, "a verse please")
    assert call.body["messages"][0]["content"] == "You are POET-PROMPT."

    thread = await chat(world, plain, "plain start", user=member)
    (call,) = llm_calls(world, "plain start")
    assert "POET-PROMPT" not in call.body["messages"][0]["content"]
    someone = world.user()
    text = await command(
        world, "persona", {"name": "poet"}, sub="use", user=someone, channel=thread
    )
    assert text == (
        "Only the person who started this conversation, or an admin, can change its persona."
    )
    text = await command(world, "persona", {"name": "poet"}, sub="use", user=admin, channel=thread)
    assert "now uses **poet**" in text  # an admin may, as on Slack
    text = await command(world, "persona", {"name": "poet"}, sub="use", user=member, channel=thread)
    assert "now uses **poet**" in text
    await say_in_thread(world, thread, "now in verse", user=member)
    (call,) = llm_calls(world, "now in verse")
    assert call.body["messages"][0]["content"] == "You are POET-PROMPT."


# -- usage -----------------------------------------------------------------------------------


async def test_usage_shows_your_tokens_and_spend_and_the_server_view_is_for_admins(
    world: World,
) -> None:
    me, admin = world.user(), world.user("admin")
    channel = world.channels.take()
    text = await command(world, "usage", user=me, channel=channel)
    assert "Today: 0 tokens, $0.00" in text

    world.llm.queue("workers", workers_stream(["a lot"], usage=(900, 600)))  # the top spender
    await chat(world, channel, "count my tokens", user=me)
    await world.fake.wait_until(  # the ledger row is written just after the final edit
        lambda: world.bot.rows("SELECT 1 FROM usage_ledger WHERE user_id = ?", world.uid(me)),
        10,
        what="the usage row",
    )
    text = await command(world, "usage", user=me, channel=channel)
    assert text.startswith("**Your usage**")
    today = next(line for line in text.splitlines() if line.startswith("Today:"))
    assert "Today: 0 tokens" not in today and "$" in today
    assert "llama-3.1-8b [workers-ai]" in text

    refusal = await command(world, "usage", {"scope": "server"}, user=me, channel=channel)
    assert refusal == "Only admins can see this server's usage."
    text = await command(world, "usage", {"scope": "server"}, user=admin, channel=channel)
    assert text.startswith("**This server's usage**")
    assert "Top users this month:" in text and f"1. <@{world.uid(me)}>:" in text

    # The other server's totals know nothing of this one.
    text = await command(world, "usage", user=me, channel=world.other.channels[0])
    assert "Today: 0 tokens, $0.00" in text


async def test_search_finds_your_words_here_linked_to_their_threads_and_nobody_elses(
    world: World,
) -> None:
    me, someone = world.user(), world.user()
    here, there = world.channels.take(2)
    mine = await chat(world, here, "my quasar telescope wobbles", user=me)
    await say_in_thread(world, mine, "the quasar question from someone", user=someone)
    theirs = await chat(world, there, "someone's quasar notes", user=someone)
    elsewhere = await chat(world, world.other.channels[0], "a quasar in the other server", user=me)

    text = await command(world, "search", {"words": "Quasars"}, user=me, channel=here)
    assert text.startswith("**Found in your conversations here**"), text
    assert "1. [my quasar telescope wobbles](" in text and link(world.fake.guild.id, mine) in text
    assert "you: my **quasar** telescope wobbles" in text  # the matched word in bold
    assert "someone" not in text and theirs not in text  # not another user's, even in my thread
    assert "other server" not in text and elsewhere not in text
    assert "-# Only your own messages" in text

    text = await command(world, "search", {"words": "quasar notes"}, user=me, channel=here)
    assert text == "None of your messages here contain quasar notes."
    text = await command(world, "search", {"words": '"*'}, user=me, channel=here)
    assert text == "Give /search a word or two to look for."
    abroad = world.other.channels[0]
    text = await command(world, "search", {"words": "quasar"}, user=me, channel=abroad)
    assert "a **quasar** in the other server" in text and link(world.other.id, elsewhere) in text
    assert "telescope" not in text
