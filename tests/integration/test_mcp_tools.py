"""MCP tools in a chat turn: a real MCP server (tests/fakes/mcp_server.py, the SDK's MCPServer)
over stdio as a subprocess and over streamable HTTP on loopback; real chat providers over HTTP
against the strict LLM fake (which refuses a tool message that answers no call, in each
protocol's own way); the real engine, store and streamer on a memory surface.
"""

from __future__ import annotations

import asyncio
import socket
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import pytest_asyncio

from bot.app import build_catalog, build_router
from bot.clock import SYSTEM_CLOCK
from bot.domain import ChatOptions, ChatRequest, ConversationKey
from bot.engine.approvals import Answer
from bot.engine.chat import ChatEngine, TurnOutcome
from bot.engine.personas import PersonaService, PersonaSpec
from bot.engine.rounds import NOTICE_ROUNDS
from bot.ports import PlatformLimits
from bot.store import Store
from bot.tools import Toolboxes
from bot.tools.mcp import McpServerConfig, McpServers
from tests.fakes.llm_server import (
    FakeToolCall,
    LLMFake,
    anthropic_stream,
    anthropic_tool_stream,
    llm_fake,
    openai_stream,
    openai_tool_stream,
    workers_stream,
    workers_tool_stream,
)
from tests.fakes.surface import MemorySurface
from tests.support import settings_for

__all__ = ["llm_fake"]

LIMITS = PlatformLimits(max_chars=2000, min_edit_interval=0.01)
APPEND_ONLY = PlatformLimits(max_chars=2000, min_edit_interval=0.01, append_only=True)
KEY = ConversationKey("discord", "guild1", "chan1", "thread1")
ALICE = "u-alice"
SERVER = [sys.executable, "-m", "tests.fakes.mcp_server"]


def stdio(name: str = "issues", **extra: Any) -> McpServerConfig:
    return McpServerConfig(name=name, command=sys.executable, args=SERVER[1:], **extra)


async def started(*configs: McpServerConfig) -> McpServers:
    servers = McpServers(list(configs), allowed_commands=[sys.executable], backoff=0.05)
    await servers.start()
    return servers


@pytest_asyncio.fixture
async def issues() -> AsyncIterator[McpServers]:
    servers = await started(stdio(call_timeout=1.0))
    yield servers
    await servers.aclose()


def actions_by_label(servers: McpServers, allow: tuple[str, ...] | None = None) -> dict[str, Any]:
    return {a.label: a for a in servers.actions(allow)}


# -- the MCP client ------------------------------------------------------------------------------


async def test_stdio_server_lists_its_tools_and_answers_calls(issues: McpServers) -> None:
    state = issues.servers["issues"]
    assert state.status == "connected"
    labels = {t.label for t in state.tools}
    assert {"issues.search_issues", "issues.slow", "issues.close_issue"} <= labels
    offered = actions_by_label(issues)
    assert offered["issues.close_issue"].acts  # destructive: runs only once approved
    assert not offered["issues.search_issues"].acts
    assert "issues.close_issue" not in {a.label for a in issues.actions(None, acting=False)}
    search = offered["issues.search_issues"]
    assert search.spec.name == "issues__search_issues"
    assert search.spec.parameters["required"] == ["query"]
    result = await search.run({"query": "login"})
    assert not result.is_error
    assert result.text.splitlines() == [
        "#101 Login fails with SSO after the 2.3 update",
        "#103 Login button misaligned on mobile",
    ]


async def test_slow_failing_and_badly_called_tools_are_errors_not_crashes(
    issues: McpServers,
) -> None:
    offered = actions_by_label(issues)
    slow = await offered["issues.slow"].run({"seconds": 5})
    assert slow.is_error and slow.note == "timed out after 1 s"
    failed = await offered["issues.fails"].run({})
    assert failed.is_error and failed.note == ""  # the tool said so; the model reads why
    wrong = await offered["issues.search_issues"].run({"query": 5})
    assert wrong.is_error and "query" in wrong.text
    after = await offered["issues.search_issues"].run({"query": "csv"})
    assert after.text == "#104 Export to CSV drops the last row"  # the server still serves


async def test_a_server_that_dies_mid_call_is_an_error_then_reconnected(
    issues: McpServers,
) -> None:
    offered = actions_by_label(issues)
    died = await offered["issues.die"].run({})
    assert died.is_error and died.note == "the server stopped responding"
    for _ in range(200):
        if issues.servers["issues"].status == "connected" and issues.servers["issues"].client:
            break
        await asyncio.sleep(0.05)
    again = actions_by_label(issues)["issues.search_issues"]
    assert (await again.run({"query": "slow"})).text == "#102 Slow search on large workspaces"


async def test_stdio_commands_only_from_the_allow_list_and_never_inline_code() -> None:
    servers = McpServers(
        [
            McpServerConfig(name="shell", command="bash", args=["server.sh"]),
            McpServerConfig(name="inline", command=sys.executable, args=["-c", "print(1)"]),
        ],
        allowed_commands=[sys.executable],
    )
    await servers.start()
    try:
        shell, inline = servers.servers["shell"], servers.servers["inline"]
        assert shell.status == "refused" and "MCP_COMMANDS" in shell.reason
        assert inline.status == "refused" and "-c" in inline.reason
        assert servers.actions(None) == []
    finally:
        await servers.aclose()


async def test_an_unreachable_server_fails_start_quickly_and_keeps_trying() -> None:
    port = _free_port()
    servers = await started(
        McpServerConfig(name="gone", url=f"http://127.0.0.1:{port}/mcp", connect_timeout=2)
    )
    try:
        assert servers.servers["gone"].status == "failed"
        assert servers.actions(None) == []
    finally:
        await servers.aclose()


@pytest.fixture
def http_server() -> Iterator[str]:
    port = _free_port()
    process = subprocess.Popen(
        [*SERVER, "http", str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        _wait_for_port(port, process)
        yield f"http://127.0.0.1:{port}/mcp"
    finally:
        process.terminate()
        process.wait(10)


async def test_streamable_http_server_with_headers(http_server: str) -> None:
    config = McpServerConfig(
        name="remote", url=http_server, headers={"Authorization": "Bearer mcp-secret-1"}
    )
    servers = await started(config)
    try:
        assert servers.servers["remote"].status == "connected"
        offered = actions_by_label(servers)
        assert (await offered["remote.whoami"].run({})).text == "Bearer mcp-secret-1"
        found = await offered["remote.search_issues"].run({"query": "export"})
        assert found.text == "#104 Export to CSV drops the last row"
        assert "mcp-secret-1" in config.secrets()  # redacted from logs with the other keys
    finally:
        await servers.aclose()


# -- tool rounds in a chat turn ---------------------------------------------------------------


@dataclass
class Harness:
    engine: ChatEngine
    store: Store
    fake: LLMFake
    personas: PersonaService

    async def ask(
        self,
        text: str,
        *,
        model: str | None = None,
        persona: str | None = None,
        limits: PlatformLimits = LIMITS,
    ) -> tuple[TurnOutcome, MemorySurface]:
        surface = MemorySurface(SYSTEM_CLOCK, limits)
        outcome = await self.engine.handle(
            ChatRequest(KEY, ALICE, text, ChatOptions(model=model)), surface, persona=persona
        )
        return outcome, surface


@pytest_asyncio.fixture
async def harness(llm_fake: LLMFake, issues: McpServers) -> AsyncIterator[Harness]:
    settings = settings_for(llm_fake)
    catalog = build_catalog(settings)
    router = build_router(settings, catalog)
    store = await Store.open("sqlite+aiosqlite:///:memory:")
    personas = PersonaService(store, catalog, default_model="llama-3.1-8b")
    personas.toolbox = Toolboxes(issues)
    engine = ChatEngine(
        store,
        router,
        catalog,
        default_model="llama-3.1-8b",
        system_prompt="Be brief.",
        personas=personas,
        toolbox=issues,
        tool_rounds=3,
    )
    yield Harness(engine, store, llm_fake, personas)
    await router.registry.aclose()
    await store.close()


SEARCH = FakeToolCall("issues__search_issues", {"query": "login"}, id="call_s1")
ANSWER = ["There are two open login issues: ", "#101 and #103."]
PROGRESS = "> 🔧 `issues.search_issues` “login” … done ("


def offered_names(body: dict[str, Any]) -> list[str]:
    return [t["function"]["name"] if "function" in t else t["name"] for t in body["tools"]]


async def test_openai_model_calls_an_mcp_tool_then_answers_with_its_result(
    harness: Harness,
) -> None:
    harness.fake.queue(
        "openai",
        openai_tool_stream([SEARCH], text=["Let me look."], usage=(40, 12)),
        openai_stream(ANSWER, usage=(90, 15)),
    )
    outcome, surface = await harness.ask(
        "What are the open issues about login?", model="gpt-4o-mini"
    )

    first, second = [c.body for c in harness.fake.calls_to("openai")]
    assert "issues__search_issues" in offered_names(first)
    assert "issues__close_issue" in offered_names(first)
    assistant, tool = second["messages"][-2:]
    assert assistant["role"] == "assistant" and assistant["content"] == "Let me look."
    (call,) = assistant["tool_calls"]
    assert call["id"] == "call_s1" and call["function"]["name"] == "issues__search_issues"
    assert tool == {
        "role": "tool",
        "tool_call_id": "call_s1",
        "content": "#101 Login fails with SSO after the 2.3 update\n"
        "#103 Login button misaligned on mobile",
    }
    assert second["model"] == first["model"]  # the same model for every round

    head, _, tail = outcome.text.partition(PROGRESS)
    assert head == "Let me look.\n\n"
    assert tail.endswith(" s)\n\nThere are two open login issues: #101 and #103.")
    assert "#101 Login fails" not in outcome.text  # tool output is never shown raw
    assert outcome.status == "complete" and outcome.finish_reason == "stop"
    assert surface.visible_text() == outcome.text

    conversation = await harness.store.get_conversation(KEY)
    assert conversation is not None
    _, stored = await harness.store.history(conversation.id)
    assert stored.content == outcome.text
    assert (stored.prompt_tokens, stored.completion_tokens) == (40 + 90, 12 + 15)


async def test_anthropic_tool_use_and_result_blocks(harness: Harness) -> None:
    call = FakeToolCall("issues__search_issues", {"query": "csv"}, id="toolu_01")
    harness.fake.queue(
        "anthropic",
        anthropic_tool_stream([call]),
        anthropic_stream(["One: #104."]),
    )
    outcome, _ = await harness.ask("Any CSV issues?", model="claude-haiku-4-5")
    second = harness.fake.calls_to("anthropic")[-1].body
    assistant, user = second["messages"][-2:]
    assert assistant == {
        "role": "assistant",
        "content": [
            {"type": "tool_use", "id": "toolu_01", "name": "issues__search_issues",
             "input": {"query": "csv"}},
        ],
    }  # fmt: skip
    assert user == {
        "role": "user",
        "content": [
            {"type": "tool_result", "tool_use_id": "toolu_01",
             "content": "#104 Export to CSV drops the last row"},
        ],
    }  # fmt: skip
    assert (
        outcome.text.endswith("One: #104.")
        and "`issues.search_issues` “csv” … done" in outcome.text
    )


async def test_workers_ai_native_calls_without_ids_get_tool_messages(harness: Harness) -> None:
    harness.fake.queue(
        "workers",
        workers_tool_stream([FakeToolCall("issues__search_issues", {"query": "mobile"})]),
        workers_stream(["#103 it is."]),
    )
    outcome, _ = await harness.ask("Mobile issues?")
    second = harness.fake.calls_to("workers")[-1].body
    assistant, tool = second["messages"][-2:]
    assert assistant["tool_calls"][0]["id"] == tool["tool_call_id"]
    assert tool["content"] == "#103 Login button misaligned on mobile"
    assert outcome.text.endswith("#103 it is.")


async def test_a_failing_tool_is_shown_failed_and_the_model_hears_the_error(
    harness: Harness,
) -> None:
    harness.fake.queue(
        "openai",
        openai_tool_stream([FakeToolCall("issues__slow", {"seconds": 5}, id="c1")]),
        openai_stream(["The tracker is slow today."]),
    )
    outcome, _ = await harness.ask("Try the slow one", model="gpt-4o-mini")
    tool = harness.fake.calls_to("openai")[-1].body["messages"][-1]
    assert tool["content"] == "Error: timed out after 1 s"
    assert "> 🔧 `issues.slow` … failed: timed out after 1 s (" in outcome.text
    assert outcome.text.endswith("The tracker is slow today.")


async def test_tool_rounds_are_capped_and_the_reply_says_so(harness: Harness) -> None:
    again = [
        openai_tool_stream([FakeToolCall("issues__count_calls", {}, id=f"c{i}")]) for i in range(5)
    ]
    harness.fake.queue("openai", *again)
    outcome, surface = await harness.ask("Count forever", model="gpt-4o-mini")
    assert len(harness.fake.calls_to("openai")) == 4  # three rounds of tools, then the cap
    lines = outcome.text.splitlines()
    assert len(lines) == 3 and all("`issues.count_calls` … done (" in line for line in lines)
    assert surface.visible_text().endswith("\n\n" + NOTICE_ROUNDS.format(rounds=3))


async def test_append_only_surface_shows_the_same_reply(harness: Harness) -> None:
    harness.fake.queue(
        "openai",
        openai_tool_stream([SEARCH]),
        openai_stream(ANSWER),
    )
    outcome, surface = await harness.ask("Login issues?", model="gpt-4o-mini", limits=APPEND_ONLY)
    assert surface.visible_text() == outcome.text
    assert PROGRESS in outcome.text and outcome.text.endswith("#101 and #103.")


async def test_persona_allow_list_limits_the_tools(harness: Harness) -> None:
    await harness.personas.create(
        KEY,
        ALICE,
        PersonaSpec("triage", "You triage.", tools=("issues.search_issues",)),
        is_admin=True,
    )
    await harness.personas.create(KEY, ALICE, PersonaSpec("plain", "You chat."), is_admin=True)
    harness.fake.queue("openai", openai_stream(["ok"]), openai_stream(["ok"]))
    await harness.ask("hi", model="gpt-4o-mini", persona="triage")
    await harness.ask("hi", model="gpt-4o-mini", persona="plain")
    triage, plain = [c.body for c in harness.fake.calls_to("openai")]
    assert offered_names(triage) == ["issues__search_issues"]
    assert "tools" not in plain


async def test_stop_during_a_tool_call_stops_the_reply(harness: Harness) -> None:
    harness.fake.queue(
        "openai", openai_tool_stream([FakeToolCall("issues__slow", {"seconds": 0.9}, id="c1")])
    )
    surface = MemorySurface(SYSTEM_CLOCK, LIMITS)
    request = ChatRequest(KEY, ALICE, "slow please", ChatOptions(model="gpt-4o-mini"))
    turn = asyncio.create_task(harness.engine.handle(request, surface))
    for _ in range(200):
        if "issues.slow" in surface.visible_text():
            break
        await asyncio.sleep(0.01)
    (message_id,) = harness.engine.running()
    harness.engine.stop(message_id, ALICE)
    outcome = await turn
    assert outcome.status == "interrupted"
    assert "`issues.slow` …" in outcome.text
    assert len(harness.fake.calls_to("openai")) == 1


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_for_port(port: int, process: subprocess.Popen[bytes]) -> None:
    import time

    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError("the MCP test server exited")
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise RuntimeError("the MCP test server did not listen")


async def test_the_fake_refuses_tool_messages_that_answer_no_call(llm_fake: LLMFake) -> None:
    """The fake is strict about tool turns, as the APIs are (so the tests above can fail)."""
    from bot.llm.anthropic import AnthropicProvider
    from bot.llm.openai_compat import OpenAICompatProvider
    from bot.llm.types import ChatCall, Message, ProviderError, ToolCall

    orphan = [Message("user", "hi"), Message("tool", "result", tool_call_id="nope")]
    unanswered = [
        Message("user", "hi"),
        Message("assistant", "", (ToolCall("c1", "t", {}),)),
        Message("user", "and?"),
    ]
    openai = OpenAICompatProvider("openai", llm_fake.openai_base, llm_fake.openai_key)
    anthropic = AnthropicProvider(llm_fake.anthropic_key, base_url=llm_fake.anthropic_base)
    try:
        for provider, model in ((openai, "gpt-test"), (anthropic, "claude-test")):
            for messages in (orphan, unanswered):
                with pytest.raises(ProviderError) as caught:
                    async for _ in provider.stream(ChatCall(model, messages, 50)):
                        pass
                assert caught.value.status == 400
    finally:
        await openai.aclose()
        await anthropic.aclose()


# -- approvals ------------------------------------------------------------------------------------

CLOSE = FakeToolCall("issues__close_issue", {"number": 103}, id="c_close")


async def waiting_for_approval(surface: MemorySurface) -> int:
    """The turn id on the Approve button, once the reply shows one."""
    for _ in range(500):
        for message in surface.messages:
            for control in message.controls:
                if control.action == "approve":
                    return int(control.ref)
        await asyncio.sleep(0.01)
    raise AssertionError(f"no Approve button: {surface.visible_text()!r}")


async def start_closing(harness: Harness) -> tuple[asyncio.Task[TurnOutcome], MemorySurface]:
    harness.fake.queue(
        "openai", openai_tool_stream([CLOSE]), openai_stream(["Done: #103 is closed."])
    )
    surface = MemorySurface(SYSTEM_CLOCK, LIMITS)
    request = ChatRequest(KEY, ALICE, "Close #103", ChatOptions(model="gpt-4o-mini"))
    return asyncio.create_task(harness.engine.handle(request, surface)), surface


async def test_a_destructive_tool_waits_for_the_askers_approve(harness: Harness) -> None:
    from bot.commands.controls import NOT_WAITING, NOT_YOURS_APPROVE, ReplyControls
    from bot.domain import Caller

    controls = ReplyControls(harness.engine, harness.store)
    turn, surface = await start_closing(harness)
    turn_id = await waiting_for_approval(surface)
    assert (
        '> 🔧 `issues.close_issue` {"number": 103} … needs your approval:' in surface.visible_text()
    )
    (message,) = surface.messages
    assert [c.action for c in message.controls] == ["approve", "deny", "stop"]
    assert len(harness.fake.calls_to("openai")) == 1  # nothing ran yet

    bob = Caller("discord", "guild1", "u-bob")
    elsewhere = Caller("discord", "guild2", ALICE)  # the same user id in another server
    for stranger in (bob, elsewhere):
        refused = await controls.answer(stranger, turn_id, approve=True)
        assert refused is not None and refused.plain() == NOT_YOURS_APPROVE
    assert harness.engine.approvals.waiting(turn_id)

    assert await controls.answer(Caller("discord", "guild1", ALICE), turn_id, approve=True) is None
    outcome = await turn
    again = await controls.answer(Caller("discord", "guild1", ALICE), turn_id, approve=True)
    assert again is not None and again.plain() == NOT_WAITING  # once
    assert "needs your approval: approved, done (" in outcome.text
    assert outcome.text.endswith("Done: #103 is closed.")
    tool = harness.fake.calls_to("openai")[-1].body["messages"][-1]
    assert tool["content"] == "closed #103"
    (message,) = surface.messages
    assert [c.action for c in message.controls] == ["regenerate"]


async def test_deny_and_expiry_are_answered_to_the_model(harness: Harness) -> None:
    from bot.commands.controls import ReplyControls
    from bot.domain import Caller
    from bot.engine.rounds import REFUSED

    controls = ReplyControls(harness.engine, harness.store)
    turn, surface = await start_closing(harness)
    turn_id = await waiting_for_approval(surface)
    assert await controls.answer(Caller("discord", "guild1", ALICE), turn_id, approve=False) is None
    outcome = await turn
    assert "needs your approval: denied." in outcome.text
    tool = harness.fake.calls_to("openai")[-1].body["messages"][-1]
    assert tool["content"] == "Error: " + REFUSED[Answer.DENIED]
    count = await actions_by_label(harness.engine.runner.toolbox)["issues.count_calls"].run({})
    assert count.text == "0"  # close_issue never ran

    harness.engine.approvals.timeout = 0.2
    turn, surface = await start_closing(harness)
    outcome = await turn
    assert "needs your approval: no answer." in outcome.text
    tool = harness.fake.calls_to("openai")[-1].body["messages"][-1]
    assert tool["content"] == "Error: " + REFUSED[Answer.EXPIRED]


async def test_stop_while_waiting_for_approval(harness: Harness) -> None:
    turn, surface = await start_closing(harness)
    turn_id = await waiting_for_approval(surface)
    harness.engine.stop(turn_id, ALICE)
    outcome = await turn
    assert outcome.status == "interrupted"
    assert not harness.engine.approvals.waiting(turn_id)


async def test_shutdown_answers_a_waiting_call_as_not_run(harness: Harness) -> None:
    turn, surface = await start_closing(harness)
    await waiting_for_approval(surface)
    harness.engine.stop_accepting()
    outcome = await turn
    assert "needs your approval: not run: Parley is restarting." in outcome.text
    tool = harness.fake.calls_to("openai")[-1].body["messages"][-1]
    assert tool["content"].startswith("Error: Parley is restarting")


async def test_a_later_turn_sees_what_the_tools_said(harness: Harness) -> None:
    harness.fake.queue(
        "anthropic",
        anthropic_tool_stream([FakeToolCall("issues__search_issues", {"query": "csv"}, id="t1")]),
        anthropic_stream(["One: #104."]),
        anthropic_stream(["It drops the last row."]),
    )
    await harness.ask("Any CSV issues?", model="claude-haiku-4-5")
    await harness.ask("What does it do wrong?", model="claude-haiku-4-5")
    third = harness.fake.calls_to("anthropic")[-1].body
    kinds = [
        (m["role"], b["type"] if isinstance(m["content"], list) else "text")
        for m in third["messages"]
        for b in (m["content"] if isinstance(m["content"], list) else [m["content"]])
    ]
    assert kinds == [
        ("user", "text"), ("assistant", "tool_use"), ("user", "tool_result"),
        ("assistant", "text"), ("user", "text"),
    ]  # fmt: skip
    assert third["messages"][2]["content"][0]["content"] == "#104 Export to CSV drops the last row"
    assert third["messages"][3]["content"] == "One: #104."  # the answer, not the progress line

    # Without tools on offer, the same history goes as text (the API would refuse tool blocks).
    await harness.personas.create(KEY, ALICE, PersonaSpec("plain", "Chat."), is_admin=True)
    harness.fake.queue("anthropic", anthropic_stream(["Sure."]))
    await harness.ask("And now?", model="claude-haiku-4-5", persona="plain")
    fourth = harness.fake.calls_to("anthropic")[-1].body
    assert "tools" not in fourth and "tool_use" not in str(fourth["messages"])


async def test_a_persona_may_only_name_tools_that_exist(harness: Harness) -> None:
    from bot.engine.personas import PersonaError

    with pytest.raises(PersonaError) as refused:
        await harness.personas.create(
            KEY, ALICE, PersonaSpec("typo", "Hi.", tools=("issues.serch",)), is_admin=True
        )
    assert "No such tool here: `issues.serch`" in str(refused.value)
    assert "`issues.search_issues`" in str(refused.value)
    for n, ok in enumerate([("issues.*",), ("issues",), ("generate_image", "issues.close_issue")]):
        spec = PersonaSpec(f"ok{n}", "Hi.", tools=ok)
        await harness.personas.create(KEY, ALICE, spec, is_admin=True)


async def test_export_lists_an_answers_tool_calls(harness: Harness) -> None:
    from bot.engine.conversations import ConversationService

    harness.fake.queue("openai", openai_tool_stream([SEARCH]), openai_stream(["Two login issues."]))
    await harness.ask("Login issues?", model="gpt-4o-mini")
    exported = await ConversationService(harness.store).export(KEY, ALICE)
    text = exported.data.decode()
    assert "<details><summary>Tool calls (1)</summary>" in text
    assert '- `issues.search_issues` `{"query": "login"}`' in text
    assert "  > #101 Login fails with SSO after the 2.3 update" in text


@pytest_asyncio.fixture
async def oauth_server() -> AsyncIterator[tuple[str, str]]:
    """The test MCP server as an OAuth resource server, and its authorization server's fake."""
    from tests.fakes.oauth import OAuthFake

    async with OAuthFake() as fake:
        port = _free_port()
        process = await asyncio.create_subprocess_exec(
            *SERVER, "oauth", str(port), fake.issuer,
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        try:
            for _ in range(400):
                if process.returncode is not None:
                    raise RuntimeError("the MCP test server exited")
                with socket.socket() as s:
                    if s.connect_ex(("127.0.0.1", port)) == 0:
                        break
                await asyncio.sleep(0.05)
            yield f"http://127.0.0.1:{port}/mcp", fake.issuer
        finally:
            process.terminate()
            await process.wait()


async def test_a_remote_server_behind_oauth_client_credentials(
    oauth_server: tuple[str, str], caplog: pytest.LogCaptureFixture
) -> None:
    from bot.tools.mcp import McpOAuth
    from tests.fakes.mcp_server import TOKEN
    from tests.fakes.oauth import CLIENT_ID, CLIENT_SECRET

    url, issuer = oauth_server

    def config(name: str, secret: str) -> McpServerConfig:
        oauth = McpOAuth(client_id=CLIENT_ID, client_secret=secret, issuer=issuer, scope="issues")
        return McpServerConfig(name=name, url=url, oauth=oauth, connect_timeout=5)

    good, wrong = config("tracker", CLIENT_SECRET), config("wrong", "not-the-secret-99")
    servers = await started(good, wrong)
    try:
        assert servers.servers["tracker"].status == "connected"
        offered = actions_by_label(servers)
        assert (await offered["tracker.whoami"].run({})).text == f"Bearer {TOKEN}"
        assert servers.servers["wrong"].status == "failed"
        assert "tracker.whoami" in offered and not any(k.startswith("wrong.") for k in offered)
        assert CLIENT_SECRET in good.secrets()
    finally:
        await servers.aclose()
    everything = caplog.text + servers.servers["wrong"].reason
    assert "not-the-secret-99" not in everything and CLIENT_SECRET not in everything


async def test_a_server_that_dies_while_idle_is_found_by_its_ping_and_reconnected() -> None:
    servers = McpServers([stdio()], allowed_commands=[sys.executable], backoff=0.05, ping_every=0.2)
    await servers.start()
    try:
        state = servers.servers["issues"]
        first = state.client
        assert (await actions_by_label(servers)["issues.die_soon"].run({})).text == "bye"
        for _ in range(400):  # no call made: only the ping can notice
            if (
                state.status == "connected"
                and state.client is not None
                and state.client is not first
            ):
                break
            await asyncio.sleep(0.02)
        assert state.client is not first and state.status == "connected"
        second = state.client
        await asyncio.sleep(0.7)  # three checks of a healthy server: it stays as it is
        assert state.client is second and state.status == "connected"
        search = actions_by_label(servers)["issues.search_issues"]
        assert (await search.run({"query": "csv"})).text == "#104 Export to CSV drops the last row"
    finally:
        await servers.aclose()
