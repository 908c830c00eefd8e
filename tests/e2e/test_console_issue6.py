"""Issue 6 through the console process: history, archive, export, personas, usage, SIGTERM."""

from __future__ import annotations

import signal
from pathlib import Path

import pexpect

from bot.store import Store
from tests.e2e.test_console import expect, spawn
from tests.fakes.llm_server import LLMFake, workers_stream


async def stored_turns(env: dict[str, str]) -> list[tuple[str, str, str | None]]:
    store = await Store.open(env["DATABASE_URL"], migrate=False)
    try:
        conversations = await store.list_conversations(
            platform="console", tenant_id="console:local", user_id=None
        )
        return [
            (m.role, m.status, m.finish_reason)
            for c in conversations
            for m in await store.history(c.id)
        ]
    finally:
        await store.close()


async def test_console_personas_history_export_usage_and_archive(
    llm_fake: LLMFake, env: dict[str, str], tmp_path: Path
) -> None:
    llm_fake.queue(
        "workers",
        workers_stream(["Arr, ", "ahoy."], usage=(30, 4)),
        workers_stream(["Second."], usage=(20, 2)),
    )
    child = spawn(env, tmp_path)
    try:
        await expect(child, "you> ")
        child.sendline("/persona create pirate temperature:0.4 Talk like a pirate.")
        await expect(child, r"Created pirate · default model · temperature 0\.4\.")
        child.sendline("/persona create bad temperature:7 x")
        await expect(child, r"temperature must be between 0 and 2 \(got 7\)")
        child.sendline("/persona list")
        await expect(child, r"pirate · default model · temperature 0\.4\s+> Talk like a pirate\.")
        child.sendline("/persona use pirate")
        await expect(child, "This conversation now uses pirate · default model")
        await expect(child, "you> ")
        child.sendline("Hello there")
        await expect(child, r"parley> Arr, ahoy\.")
        await expect(child, "you> ")
        child.sendline("/history")
        await expect(child, r"1\. Hello there · 2 messages · [^·]+ · id `\d+`")
        child.sendline("/usage")
        await expect(child, r"Today: 34 tokens")
        child.sendline("/export")
        await expect(child, r"exported to (\S+\.md)")
        exported = Path(child.match.group(1).strip())
        child.sendline("/archive")
        await expect(child, "Archived: I no longer answer in that conversation")
        await expect(child, "you> ")
        child.sendline("Another topic")
        await expect(child, r"parley> Second\.")
        await expect(child, "you> ")
        child.sendline("/history")
        await expect(child, r"Another topic · 2 messages")
        history = child.before or ""
        child.sendline("/open 999")
        await expect(child, "There is no conversation of yours here.")
        child.sendline("/quit")
        await child.expect(pexpect.EOF, async_=True)
    finally:
        child.close(force=True)
    assert child.exitstatus == 0
    first = llm_fake.calls_to("workers")[0].body
    assert first["messages"][0] == {"role": "system", "content": "Talk like a pirate."}
    assert first["temperature"] == 0.4
    assert "Hello there" not in history  # archived: gone from /history
    assert exported.parent == tmp_path
    text = exported.read_text()  # noqa: ASYNC240
    assert text.startswith("# Hello there") and "Arr, ahoy." in text


async def test_sigterm_lets_a_running_reply_finish_within_the_grace(
    llm_fake: LLMFake, env: dict[str, str], tmp_path: Path
) -> None:
    llm_fake.queue("workers", workers_stream([f"w{i} " for i in range(20)], delay=0.05))
    child = spawn(env | {"SHUTDOWN_GRACE_SECONDS": "20"}, tmp_path)
    try:
        await expect(child, "you> ")
        child.sendline("Count slowly")
        await expect(child, "w2 ")
        child.kill(signal.SIGTERM)
        await expect(child, "w19")
        await expect(child, "bye")
        await child.expect(pexpect.EOF, async_=True)
    finally:
        child.close(force=True)
    assert child.exitstatus == 0
    assert await stored_turns(env) == [
        ("user", "complete", None),
        ("assistant", "complete", "stop"),
    ]


async def test_sigterm_past_the_grace_stores_the_reply_interrupted(
    llm_fake: LLMFake, env: dict[str, str], tmp_path: Path
) -> None:
    llm_fake.queue("workers", workers_stream([f"w{i} " for i in range(400)], delay=0.02))
    child = spawn(env | {"SHUTDOWN_GRACE_SECONDS": "0.2"}, tmp_path)
    try:
        await expect(child, "you> ")
        child.sendline("Talk forever")
        await expect(child, "w3 ")
        child.kill(signal.SIGTERM)
        await expect(child, r"reply cut off: Parley is restarting")
        reply = child.before or ""
        await expect(child, "bye")
        await child.expect(pexpect.EOF, async_=True)
    finally:
        child.close(force=True)
    assert child.exitstatus == 0
    assert "w399" not in reply
    assert await stored_turns(env) == [
        ("user", "complete", None),
        ("assistant", "interrupted", "cancelled"),
    ]
