"""MCP tools through the real process: `python -m bot tools`, and a console turn that calls a
tool of a real MCP server (tests/fakes/mcp_server.py over stdio) and shows its progress."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from tests.e2e.conftest import run_bot
from tests.e2e.test_console import expect, spawn
from tests.fakes.llm_server import FakeToolCall, LLMFake, workers_stream, workers_tool_stream

REPO = Path(__file__).resolve().parents[2]


def with_tools(env: dict[str, str], tmp_path: Path, *extra: dict[str, object]) -> dict[str, str]:
    """BOT_CONFIG naming the test MCP server (and `extra` servers), its python allowed."""
    servers = [
        {"name": "issues", "command": sys.executable, "args": ["-m", "tests.fakes.mcp_server"],
         "cwd": str(REPO)},
        *extra,
    ]  # fmt: skip
    lines = [f"mcp_commands = [{json.dumps(sys.executable)}]"]
    for server in servers:
        lines.append("[[mcp_servers]]")
        lines += [f"{key} = {json.dumps(value)}" for key, value in server.items()]
    config = tmp_path / "parley.toml"
    config.write_text("\n".join(lines) + "\n")
    return {**env, "BOT_CONFIG": str(config)}


async def test_tools_command_lists_servers_and_tools(
    llm_fake: LLMFake, env: dict[str, str], tmp_path: Path
) -> None:
    shell = {"name": "shell", "command": "bash", "args": ["server.sh"]}
    result = await run_bot("tools", env=with_tools(env, tmp_path, shell), cwd=tmp_path)
    lines = result.stdout.splitlines()
    assert lines[0].startswith("issues (stdio, ") and lines[0].endswith(" connected")
    by_tool = {line.split()[0]: line for line in lines[1:] if line.startswith("  ")}
    assert "offered" in by_tool["issues.search_issues"]
    assert "needs approval" in by_tool["issues.close_issue"]
    assert "shell (stdio, bash server.sh) refused: command 'bash' is not in MCP_COMMANDS" in lines
    assert result.code == 1  # a server is not connected


async def test_tools_command_without_servers(
    llm_fake: LLMFake, env: dict[str, str], tmp_path: Path
) -> None:
    result = await run_bot("tools", env=env, cwd=tmp_path)
    assert result.code == 0 and "no MCP servers configured" in result.stdout


async def test_console_turn_calls_an_mcp_tool_and_shows_progress(
    llm_fake: LLMFake, env: dict[str, str], tmp_path: Path
) -> None:
    llm_fake.queue(
        "workers",
        workers_tool_stream([FakeToolCall("issues__search_issues", {"query": "login"})]),
        workers_stream(["Two: ", "#101 and #103."]),
    )
    child = spawn(with_tools(env, tmp_path), tmp_path)
    try:
        await expect(child, "you> ")
        child.sendline("What are the open issues about login?")
        await expect(child, r"parley> > 🔧 `issues.search_issues` “login” … done \(\d+\.\d s\)")
        await expect(child, r"Two: #101 and #103\.")
        await expect(child, "you> ")
        child.sendline("/quit")
        await expect(child, "bye")
    finally:
        child.close(force=True)
    second = llm_fake.calls_to("workers")[-1].body["messages"]
    assert second[-1]["content"].startswith("#101 Login fails with SSO")
    assert second[-1]["role"] == "tool"


async def test_console_asks_before_a_destructive_tool_runs(
    llm_fake: LLMFake, env: dict[str, str], tmp_path: Path
) -> None:
    close = FakeToolCall("issues__close_issue", {"number": 103})
    llm_fake.queue(
        "workers",
        workers_tool_stream([close]),
        workers_stream(["Closed."]),
        workers_tool_stream([close]),
        workers_stream(["Left open."]),
    )
    child = spawn(with_tools(env, tmp_path), tmp_path)
    try:
        await expect(child, "you> ")
        child.sendline("Close #103")
        await expect(
            child,
            r'`issues.close_issue` \{"number": 103\} … needs your approval:.*\(/approve or /deny\)',
        )
        child.sendline("/approve")
        await expect(child, r"approved, done \(\d+\.\d s\)")
        await expect(child, r"Closed\.")
        await expect(child, "you> ")
        child.sendline("Close it again")
        await expect(child, r"\(/approve or /deny\)")
        child.sendline("/deny")
        await expect(child, r"denied\.")
        await expect(child, r"Left open\.")
        await expect(child, "you> ")
        child.sendline("/quit")
        await expect(child, "bye")
    finally:
        child.close(force=True)
    approved, denied = (c.body["messages"][-1] for c in llm_fake.calls_to("workers")[1::2])
    assert approved["content"] == "closed #103"
    assert denied["content"].startswith("Error: The user denied this call")


async def test_a_persona_with_mcp_and_web_search_answers_with_progress(
    llm_fake: LLMFake, env: dict[str, str], tmp_path: Path
) -> None:
    from tests.fakes.search import KEY, SearchFake

    search = FakeToolCall("web__search", {"query": "python 3.14 release"})
    issues = FakeToolCall("issues__search_issues", {"query": "login"})
    llm_fake.queue(
        "workers",
        workers_tool_stream([issues, search]),
        workers_stream(
            ["Open: #101, #103. Python 3.14 is out ", "([1](https://www.python.org/))."]
        ),
    )
    async with SearchFake() as fake_search:
        tools_env = with_tools(env, tmp_path) | {
            "TAVILY_API_KEY": KEY,
            "TAVILY_BASE_URL": fake_search.base_url,
        }
        child = spawn(tools_env, tmp_path)
        try:
            await expect(child, "you> ")
            child.sendline("/persona create triage tools:issues.*,web.search Answer from sources.")
            await expect(child, "triage")
            await expect(child, "you> ")
            child.sendline("/persona use triage")
            await expect(child, "you> ")
            child.sendline("What are the open issues about login, and is Python 3.14 out?")
            await expect(child, r"> 🔧 `issues.search_issues` “login” … done \(\d+\.\d s\)")
            await expect(child, r"> 🔎 Searching the web for “python 3.14 release” … 1 result")
            await expect(child, r"Python 3\.14 is out \(\[1\]\(https://www\.python\.org/\)\)\.")
            await expect(child, "you> ")
            child.sendline("/quit")
            await expect(child, "bye")
        finally:
            child.close(force=True)
        assert len(fake_search.calls) == 1
    body = llm_fake.calls_to("workers")[-1].body
    assert body["messages"][0]["content"].startswith("Answer from sources.")
    offered = {t["function"]["name"] for t in llm_fake.calls_to("workers")[0].body["tools"]}
    assert "web__search" in offered and "issues__search_issues" in offered
    results = [m for m in body["messages"] if m["role"] == "tool"]
    assert results[0]["content"].startswith("#101") and results[1]["content"].startswith("[1]")
