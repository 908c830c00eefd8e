"""MCP tools on Slack, through the real `python -m bot` process against the Slack fake: a real
MCP server (tests/fakes/mcp_server.py, over stdio) configured by BOT_CONFIG. The progress line
streams natively like any text; Approve / Deny wait on the Stop note (a native stream takes no
buttons) and only the asker's click counts, once."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.e2e.slack.conftest import ALICE, CHANNEL, StartBot
from tests.e2e.slack.helpers import ephemerals_to, finished, question_thread, wait_answer
from tests.e2e.test_console_tools import with_tools
from tests.fakes.llm_server import FakeToolCall, workers_stream, workers_tool_stream

BOB = "U0BOB"


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
    assert reply.text.startswith("> 🔧 `issues.search_issues` “csv” … done (")
    assert reply.text.endswith(" s)\n\nIt is #104.")

    await bot.sender.command("/chat", "Close it", user=ALICE, channel=CHANNEL)
    await fake.wait_for(lambda: len(fake.calls_to("chat.postMessage")) >= 3)
    thread = question_thread(fake, 1)

    def approve_button() -> tuple[Any, dict[str, Any]] | None:
        for message in fake.bot_replies(CHANNEL, thread):
            for button in message.buttons():
                if button.get("action_id") == "parley_approve":
                    return message, button
        return None

    await fake.wait_for(approve_button, 20)
    note, approve = approve_button()  # type: ignore[misc]
    labels = [b["text"]["text"] for b in note.buttons()]
    assert labels == ["Approve", "Deny", "Stop"]
    streamed = [m for m in fake.bot_replies(CHANNEL, thread) if m.streamed]
    assert streamed and streamed[0].text.endswith("`issues.close_issue` … needs your approval:")

    click = {"user": BOB, "channel": CHANNEL, "message_ts": note.ts, "thread_ts": thread}
    await bot.sender.click(approve, **click)
    await fake.wait_for(lambda: ephemerals_to(fake, BOB, CHANNEL), 10)
    assert ephemerals_to(fake, BOB, CHANNEL) == [
        "Only the person who asked can approve or deny this."
    ]
    await bot.sender.click(approve, **(click | {"user": ALICE}))
    replies = await wait_answer(fake, CHANNEL, thread)
    [reply] = [m for m in replies if m.streamed and finished(m)]
    assert "needs your approval: approved, done (" in reply.text
    assert reply.text.endswith("Closed #104.")
    assert bot.llm.calls_to("workers")[-1].body["messages"][-1]["content"] == "closed #104"
    assert not any(b.get("action_id") == "parley_approve" for m in replies for b in m.buttons())
