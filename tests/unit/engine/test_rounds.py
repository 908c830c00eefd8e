"""The progress lines of tool rounds: short, inert, and only ever growing."""

from __future__ import annotations

from bot.engine.rounds import joined, outcome, progress_line, split_calls
from bot.llm.types import ToolCall, ToolSpec
from bot.tools import Action, ToolResult, allowed, wire_name


def test_progress_line_shows_the_first_text_argument_short_and_inert() -> None:
    assert progress_line("issues.search", {"limit": 3, "query": "login"}) == (
        "> 🔧 `issues.search` “login” …"
    )
    long = progress_line("web.search", {"q": "`rm -rf`\n" + "x" * 100})
    assert "`rm" not in long and "\n" not in long
    assert long.endswith("x…” …") and len(long) < 100
    assert progress_line("issues.count", {}) == "> 🔧 `issues.count` …"


def test_outcome_grows_the_line_and_names_only_parleys_own_reasons() -> None:
    assert outcome(ToolResult("3 issues"), 0.42) == " done (0.4 s)"
    assert outcome(ToolResult.failed("timed out after 30 s"), 30.0) == (
        " failed: timed out after 30 s (30.0 s)"
    )
    assert outcome(ToolResult("stack trace from the tool", is_error=True), 1) == " failed (1.0 s)"


def test_joined_and_split() -> None:
    assert joined("Let me look.  ", "> 🔧 x") == "Let me look.\n\n> 🔧 x"
    assert joined("", "answer") == "answer" and joined("text", "") == "text"

    async def run(arguments: object) -> ToolResult:
        return ToolResult("")

    action = Action(ToolSpec("issues__search", "", {"type": "object"}), "issues.search", run)
    calls = [ToolCall("1", "issues__search", {}), ToolCall("2", "generate_image", {})]
    split = split_calls(calls, {"issues__search": action})
    assert [c.id for c in split.runnable] == ["1"] and [c.id for c in split.others] == ["2"]


def test_wire_names_and_allow_lists() -> None:
    assert wire_name("git hub", "search.issues") == "git_hub__search_issues"
    assert len(wire_name("s", "t" * 100)) == 64
    assert allowed(("issues.search",), "issues", "search")
    assert allowed(("issues.*",), "issues", "close") and allowed(("issues",), "issues", "x")
    assert not allowed(("issues.search",), "issues", "close")
    assert not allowed(("generate_image",), "issues", "search")


def test_an_answer_keeps_its_whole_rounds_for_later_turns() -> None:
    from bot.engine.history import RESULT_KEPT, rounds_messages, rounds_record, without_tools
    from bot.llm.types import Message

    call = ToolCall("c1", "issues__search", {"query": "login"})
    unanswered = ToolCall("c2", "issues__slow", {"seconds": 9})
    rounds = [
        Message("assistant", "Let me look.", (call,)),
        Message("tool", "x" * (RESULT_KEPT + 50), tool_call_id="c1"),
        Message("assistant", "", (unanswered,)),  # stopped while it ran: no result
    ]
    record = rounds_record(rounds, "Two issues.")
    assert record is not None
    messages, answer = rounds_messages(record, "shown text")
    assert answer == "Two issues."
    assistant, tool = messages
    assert assistant.tool_calls == (call,) and assistant.content == "Let me look."
    assert tool.tool_call_id == "c1" and tool.content.endswith("\n[cut]")
    assert len(tool.content) == RESULT_KEPT + len("\n[cut]")
    assert rounds_record(rounds[2:], "x") is None
    assert rounds_messages("{not json", "shown text") == ((), "shown text")

    plain = without_tools([Message("user", "q"), *messages, Message("assistant", answer)])
    assert [(m.role, m.content) for m in plain] == [
        ("user", "q"), ("assistant", "Let me look."), ("assistant", "Two issues."),
    ]  # fmt: skip
    assert all(not m.tool_calls for m in plain)


def test_mcp_schemas_become_object_schemas_providers_take() -> None:
    from bot.tools.mcp import _object_schema

    assert _object_schema(None) == {"type": "object"}
    given = {"$schema": "https://json-schema.org/draft/2020-12/schema", "properties": {"q": {}}}
    assert _object_schema(given) == {"type": "object", "properties": {"q": {}}}
    assert _object_schema({"type": "string", "properties": []}) == {"type": "object"}
