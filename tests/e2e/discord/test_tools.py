"""MCP tools on Discord, through the real `python -m bot` process against the fake Discord: a
real MCP server (tests/fakes/mcp_server.py, over stdio) configured by BOT_CONFIG; the progress
line in the streamed reply, and a destructive tool that waits for its asker's Approve."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

from tests.e2e.discord.conftest import BotProcess, Channels, discord_env
from tests.e2e.discord.test_chat import Answers, finished_anywhere, thread_of
from tests.e2e.test_console_tools import with_tools
from tests.fakes.discord import FakeDiscord
from tests.fakes.discord.payloads import text_of
from tests.fakes.llm_server import FakeToolCall, LLMFake, workers_stream, workers_tool_stream
from tests.fakes.search import KEY, PAGES, SearchFake

pytestmark = pytest.mark.asyncio(loop_scope="module")

LOGIN = "#101 Login fails with SSO after the 2.3 update\n#103 Login button misaligned on mobile"


class World:
    def __init__(self, fake: FakeDiscord, llm: LLMFake, bot: BotProcess) -> None:
        self.fake, self.llm, self.bot = fake, llm, bot
        self.answers = Answers(llm)
        self.channels = Channels(fake)


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def world(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[World]:
    tmp: Path = tmp_path_factory.mktemp("discord-tools")
    async with FakeDiscord(channels=4) as fake, LLMFake() as llm, SearchFake() as search:
        env = with_tools(discord_env(fake, llm, tmp, DISCORD_ADMIN_ROLE="admin"), tmp)
        env |= {"TAVILY_API_KEY": KEY, "TAVILY_BASE_URL": search.base_url}
        bot = await BotProcess(fake, env, tmp).start()
        try:
            yield World(fake, llm, bot)
        finally:
            await bot.stop()
            assert "Traceback" not in bot.logs(), bot.logs()[-3000:]


async def test_chat_shows_the_tool_call_then_answers_from_its_result(world: World) -> None:
    fake, channel = world.fake, world.channels.take()
    prompt = "What are the open issues about login?"
    call = FakeToolCall("issues__search_issues", {"query": "login"})
    world.answers.add(prompt, workers_tool_stream([call]))
    world.answers.add(LOGIN, workers_stream(["Two: ", "#101 and #103."]))
    await fake.slash("chat", {"prompt": prompt}, channel=channel)
    final = await fake.wait_until(lambda: finished_anywhere(fake, channel), 20, what="the reply")
    text = text_of(final)
    assert text.startswith("> 🔧 `issues.search_issues` “login” … done (")
    assert text.endswith(" s)\n\nTwo: #101 and #103.")
    assert "SSO" not in text  # the tool's output is the model's, not the channel's


def waiting_message(fake: FakeDiscord, channel: str) -> dict[str, Any] | None:
    thread = thread_of(fake, channel)
    for message in fake.bot_messages(thread) if thread else []:
        if any(c.startswith("parley:approve:") for c in fake.custom_ids(message)):
            return message
    starter = fake.messages.get(thread or "")
    if starter and any(c.startswith("parley:approve:") for c in fake.custom_ids(starter)):
        return starter
    return None


async def test_a_destructive_tool_runs_only_after_the_askers_approve(world: World) -> None:
    fake, channel = world.fake, world.channels.take()
    prompt = "Close issue 103, it is fixed"
    world.answers.add(
        prompt, workers_tool_stream([FakeToolCall("issues__close_issue", {"number": 103})])
    )
    world.answers.add("closed #103", workers_stream(["Closed #103."]))
    await fake.slash("chat", {"prompt": prompt}, channel=channel)
    message = await fake.wait_until(lambda: waiting_message(fake, channel), 20, what="Approve")
    assert '`issues.close_issue` {"number": 103} … needs your approval:' in text_of(message)
    ids = fake.custom_ids(message)
    assert [i.split(":")[1] for i in ids] == ["approve", "deny", "stop"]

    bob = await fake.click(message["id"], ids[0], user="bob")
    await fake.wait_until(lambda: bob.original_id is not None, 10, what="bob's notice")
    notice = fake.messages[bob.original_id]  # type: ignore[index]
    assert notice["flags"] & 64  # ephemeral
    assert text_of(notice) == "Only the person who asked can approve or deny this."
    assert world.answers.calls_for("closed #103") == []  # nothing ran

    await fake.click(message["id"], ids[0], user="alice")
    final = await fake.wait_until(lambda: finished_anywhere(fake, channel), 20, what="the reply")
    assert "needs your approval: approved, done (" in text_of(final)
    assert text_of(final).endswith("Closed #103.")
    assert len(world.answers.calls_for("closed #103")) == 1


async def test_a_persona_with_mcp_and_web_search_answers_showing_progress(world: World) -> None:
    from tests.e2e.discord.test_conversations import private

    fake, channel = world.fake, world.channels.take()
    admin = "carol"  # holds the admin role (DISCORD_ADMIN_ROLE)
    spec = {"name": "triage", "system_prompt": "Answer from the tracker and the web.",
            "tools": "issues.*, web.search"}  # fmt: skip
    created = await fake.slash("persona", spec, sub="create", user=admin, channel=channel)
    assert "Created **triage**" in str((await private(fake, created))["content"])
    prompt = "Which issues are about login, and is Python 3.14 out?"
    calls = [
        FakeToolCall("issues__search_issues", {"query": "login"}),
        FakeToolCall("web__search", {"query": "python 3.14 release"}),
    ]
    world.answers.add(prompt, workers_tool_stream(calls))
    answer = "#101 and #103; and yes ([1](https://www.python.org/downloads/release/python-3140/))."
    title, url, content = PAGES[0]
    world.answers.add(f"[1] {title}\n{url}\n{content}", workers_stream([answer]))
    await fake.slash("chat", {"prompt": prompt, "persona": "triage"}, channel=channel)
    final = await fake.wait_until(lambda: finished_anywhere(fake, channel), 20, what="the reply")
    lines = text_of(final).splitlines()
    assert lines[0].startswith("> 🔧 `issues.search_issues` “login” … done (")
    assert lines[1].startswith("> 🔎 Searching the web for “python 3.14 release” … 1 result (")
    assert lines[-1] == answer
    (first,) = [
        c for c in world.llm.calls_to("workers") if c.body["messages"][-1]["content"] == prompt
    ]
    assert first.body["messages"][0]["content"].startswith("Answer from the tracker and the web.")
    assert {t["function"]["name"] for t in first.body["tools"]} >= {
        "issues__search_issues", "web__search",
    }  # fmt: skip
