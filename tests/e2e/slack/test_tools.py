"""MCP tools on Slack, through the real `python -m bot` process against the Slack fake: a real
MCP server (tests/fakes/mcp_server.py, over stdio) configured by BOT_CONFIG. A call shows as a
task card in the native stream (timeline display); Approve / Deny wait on the Stop note (a
native stream takes no buttons) and only the asker's click counts, once."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.e2e.slack.conftest import ALICE, CHANNEL, StartBot
from tests.e2e.slack.helpers import ephemerals_to, finished, question_thread, wait_answer
from tests.e2e.test_console_tools import with_tools
from tests.fakes.llm_server import FakeToolCall, workers_stream, workers_tool_stream
from tests.fakes.slack import Message, SlackFake, SlackSender

BOB = "U0BOB"


async def waiting_call(fake: SlackFake, thread: str) -> tuple[Message, dict[str, Any]]:
    """The Stop note holding Approve while a tool call waits, and its Approve button."""

    def found() -> tuple[Message, dict[str, Any]] | None:
        for message in fake.bot_replies(CHANNEL, thread):
            for button in message.buttons():
                if button.get("action_id") == "parley_approve":
                    return message, button
        return None

    await fake.wait_for(found, 20)
    waiting = found()
    assert waiting is not None
    return waiting


async def approved_by_the_asker(
    sender: SlackSender, fake: SlackFake, thread: str, note: Message, approve: dict[str, Any]
) -> list[Message]:
    """Bob's Approve is refused, privately; Alice's runs the call: the answered thread."""
    click = {"user": BOB, "channel": CHANNEL, "message_ts": note.ts, "thread_ts": thread}
    await sender.click(approve, **click)
    await fake.wait_for(lambda: ephemerals_to(fake, BOB, CHANNEL), 10)
    assert ephemerals_to(fake, BOB, CHANNEL) == [
        "Only the person who asked can approve or deny this."
    ]
    await sender.click(approve, **(click | {"user": ALICE}))
    replies = await wait_answer(fake, CHANNEL, thread)
    [reply] = [m for m in replies if m.streamed and finished(m)]
    assert reply.text.strip() == "Closed #104."
    return replies


async def test_a_tool_call_streams_its_progress_and_waits_for_approval(
    start_bot: StartBot, tmp_path: Path
) -> None:
    config = with_tools({}, tmp_path)["BOT_CONFIG"]
    bot = await start_bot(BOT_CONFIG=config)
    fake = bot.fake
    bot.llm.queue(
        "workers",
        workers_tool_stream([FakeToolCall("issues__search_issues", {"query": "csv"})]),
        workers_stream(["It is #104."]),
        workers_tool_stream([FakeToolCall("issues__close_issue", {"number": 104})]),
        workers_stream(["Closed #104."]),
    )
    await bot.sender.command("/chat", "Any CSV issues?", user=ALICE, channel=CHANNEL)
    await fake.wait_for(lambda: fake.calls_to("chat.postMessage"))
    thread = question_thread(fake)
    [reply] = [m for m in await wait_answer(fake, CHANNEL, thread) if m.streamed]
    assert reply.text.strip() == "It is #104."  # the call shows as a task card, not a line
    (card,) = reply.tasks.values()
    assert card["title"] == "issues.search_issues “csv”" and card["status"] == "complete"
    assert card["details"].startswith("done (")
    assert fake.calls_to("chat.startStream")[-1].args["task_display_mode"] == "timeline"
    stored = bot.llm.calls_to("workers")[1].body["messages"][-1]["content"]
    assert stored.startswith("#104")

    await bot.sender.command("/chat", "Close it", user=ALICE, channel=CHANNEL)
    await fake.wait_for(lambda: len(fake.calls_to("chat.postMessage")) >= 3)
    thread = question_thread(fake, 1)

    note, approve = await waiting_call(fake, thread)
    labels = [b["text"]["text"] for b in note.buttons()]
    assert labels == ["Approve", "Deny", "Stop"]
    streamed = [m for m in fake.bot_replies(CHANNEL, thread) if m.streamed]
    (card,) = streamed[0].tasks.values()
    assert (card["status"], card["details"]) == ("in_progress", "needs your approval")

    replies = await approved_by_the_asker(bot.sender, fake, thread, note, approve)
    [reply] = [m for m in replies if m.streamed and finished(m)]
    (card,) = reply.tasks.values()
    assert card["status"] == "complete"
    assert card["details"].startswith("needs your approval: approved, done (")
    assert [status for _, status in reply.task_updates][-1] == "complete"
    assert bot.llm.calls_to("workers")[-1].body["messages"][-1]["content"] == "closed #104"
    assert not any(b.get("action_id") == "parley_approve" for m in replies for b in m.buttons())


async def test_post_and_edit_shows_the_same_progress_as_lines(
    start_bot: StartBot, tmp_path: Path
) -> None:
    config = with_tools({}, tmp_path)["BOT_CONFIG"]
    bot = await start_bot(BOT_CONFIG=config, SLACK_NATIVE_STREAMING="false")
    fake = bot.fake
    bot.llm.queue(
        "workers",
        workers_tool_stream([FakeToolCall("issues__search_issues", {"query": "csv"})]),
        workers_stream(["It is #104."]),
    )
    await bot.sender.command("/chat", "Any CSV issues?", user=ALICE, channel=CHANNEL)
    await fake.wait_for(lambda: fake.calls_to("chat.postMessage"))
    thread = question_thread(fake)
    [reply] = [m for m in await wait_answer(fake, CHANNEL, thread) if finished(m)]
    assert not reply.streamed and not reply.tasks
    assert reply.text.startswith("> 🔧 `issues.search_issues` “csv” … done (")
    assert reply.text.endswith(" s)\n\nIt is #104.")


async def test_a_persona_with_mcp_and_web_search_answers_with_task_cards(
    start_bot: StartBot, tmp_path: Path
) -> None:
    from tests.e2e.slack.helpers import run_command
    from tests.fakes.search import KEY, SearchFake

    async with SearchFake() as search:
        config = with_tools({}, tmp_path)["BOT_CONFIG"]
        bot = await start_bot(
            BOT_CONFIG=config, TAVILY_API_KEY=KEY, TAVILY_BASE_URL=search.base_url,
            SLACK_ADMIN_USERS=ALICE,
        )  # fmt: skip
        fake = bot.fake
        created = await run_command(
            bot, "/persona", "create triage tools:issues.*,web.search Answer from sources.",
            user=ALICE, channel=CHANNEL,
        )  # fmt: skip
        assert str(created["text"]).startswith("Created *triage*")
        calls = [
            FakeToolCall("issues__search_issues", {"query": "login"}),
            FakeToolCall("web__search", {"query": "python 3.14 release"}),
        ]
        answer = "#101 and #103; Python 3.14 is out ([1](https://www.python.org/))."
        bot.llm.queue("workers", workers_tool_stream(calls), workers_stream([answer]))
        prompt = "persona:triage Which issues are about login, and is Python 3.14 out?"
        await bot.sender.command("/chat", prompt, user=ALICE, channel=CHANNEL)
        await fake.wait_for(lambda: fake.calls_to("chat.postMessage"))
        thread = question_thread(fake)
        [reply] = [m for m in await wait_answer(fake, CHANNEL, thread) if m.streamed]
        assert reply.text.strip() == answer
        cards = sorted((c["title"], c["status"]) for c in reply.tasks.values())
        assert cards == [
            ("Searching the web for “python 3.14 release”", "complete"),
            ("issues.search_issues “login”", "complete"),
        ]
        assert len(search.calls) == 1
    body = bot.llm.calls_to("workers")[-1].body
    assert body["messages"][0]["content"].startswith("Answer from sources.")


async def test_approve_and_deny_that_reach_another_replica_answer_the_call_there(
    start_bot: StartBot, tmp_path: Path
) -> None:
    """Two processes on one database, behind a load balancer: the reply runs on one, every
    click goes to the other. Only the asker's answer counts, once, where the call waits."""
    config = with_tools({}, tmp_path)["BOT_CONFIG"]
    running = await start_bot(BOT_CONFIG=config)
    other = await start_bot(BOT_CONFIG=config)
    fake = running.fake
    running.llm.queue(
        "workers",
        workers_tool_stream([FakeToolCall("issues__close_issue", {"number": 104})]),
        workers_stream(["Closed #104."]),
    )
    await running.sender.command("/chat", "Close it", user=ALICE, channel=CHANNEL)
    await fake.wait_for(lambda: fake.calls_to("chat.postMessage"))
    thread = question_thread(fake)

    note, approve = await waiting_call(fake, thread)
    replies = await approved_by_the_asker(other.sender, fake, thread, note, approve)
    [reply] = [m for m in replies if m.streamed and finished(m)]
    (card,) = reply.tasks.values()
    assert card["details"].startswith("needs your approval: approved, done (")
    assert running.llm.calls_to("workers")[-1].body["messages"][-1]["content"] == "closed #104"
    late = {"user": ALICE, "channel": CHANNEL, "message_ts": note.ts, "thread_ts": thread}
    await other.sender.click(approve, **late)  # a second click, late
    await fake.wait_for(lambda: ephemerals_to(fake, ALICE, CHANNEL), 10)
    assert ephemerals_to(fake, ALICE, CHANNEL) == [
        "That request is no longer waiting for an answer."
    ]
    assert "approval not shared" not in running.output() + other.output()
