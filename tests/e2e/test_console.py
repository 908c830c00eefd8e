"""The console chat driven through a pseudo-terminal, as a person would."""

from __future__ import annotations

import io
import signal
import sys
from pathlib import Path

import pexpect

from tests.fakes.llm_server import LLMFake, raw_stream, sse, workers_stream

TIMEOUT = 20


def spawn(env: dict[str, str], cwd: Path) -> pexpect.spawn:
    return pexpect.spawn(
        sys.executable,
        ["-m", "bot"],
        env=env,
        cwd=str(cwd),
        encoding="utf-8",
        timeout=TIMEOUT,
        dimensions=(40, 200),
    )


async def expect(child: pexpect.spawn, pattern: str) -> None:
    await child.expect(pattern, async_=True)


async def test_console_chat_streams_keeps_history_and_switches_models(
    llm_fake: LLMFake, env: dict[str, str], tmp_path: Path
) -> None:
    llm_fake.queue(
        "workers",
        workers_stream(["The answer ", "is 42."]),
        workers_stream(["```python\nprint(42)\n```", "\nDone."]),
    )
    child = spawn(env, tmp_path)
    try:
        await expect(child, "Parley console — model llama-3.1-8b")
        await expect(child, "you> ")
        child.sendline("What is the answer?")
        await expect(child, r"parley> The answer is 42\.")
        await expect(child, "you> ")
        child.sendline("/model mistral")
        await expect(child, r"The model for this thread is now .*\(`mistral-7b`\)")
        await expect(child, "you> ")
        child.sendline("Show code")
        await expect(child, r"parley> ```python\r\nprint\(42\)\r\n```\r\nDone\.")
        await expect(child, "you> ")
        child.sendline("/quit")
        await expect(child, "bye")
        await child.expect(pexpect.EOF, async_=True)
    finally:
        child.close(force=True)
    assert child.exitstatus == 0
    calls = llm_fake.calls_to("workers")
    assert calls[1].path.endswith("@cf/mistral/mistral-7b-instruct-v0.1")
    assert {"role": "assistant", "content": "The answer is 42."} in calls[1].body["messages"]

    # A new session resumes the same conversation from the store.
    llm_fake.queue("workers", workers_stream(["Still here."]))
    child = spawn(env, tmp_path)
    try:
        await expect(child, "model mistral-7b")
        await expect(child, "you> ")
        child.sendline("Remember me?")
        await expect(child, r"Still here\.")
        await expect(child, "you> ")
        child.sendline("/new")
        await expect(child, r"\(new conversation\)")
        child.sendeof()
        await child.expect(pexpect.EOF, async_=True)
    finally:
        child.close(force=True)
    assert {"role": "user", "content": "What is the answer?"} in llm_fake.calls_to("workers")[
        2
    ].body["messages"]


async def test_ctrl_c_stops_a_reply_and_ctrl_c_at_the_prompt_quits(
    llm_fake: LLMFake, env: dict[str, str], tmp_path: Path
) -> None:
    llm_fake.queue("workers", workers_stream([f"w{i} " for i in range(400)], delay=0.02))
    child = spawn(env, tmp_path)
    try:
        await expect(child, "you> ")
        child.sendline("Talk forever")
        await expect(child, "w5 ")
        child.kill(signal.SIGINT)
        await expect(child, r"_\(stopped\)_")
        reply = child.before or ""
        await expect(child, "you> ")
        child.kill(signal.SIGINT)
        await expect(child, "bye")
        await child.expect(pexpect.EOF, async_=True)
    finally:
        child.close(force=True)
    assert child.exitstatus == 0
    assert "w399" not in reply  # cut short: 400 words would take 8 s


async def test_a_crash_mid_reply_is_reported_and_stored_as_interrupted_after_restart(
    llm_fake: LLMFake, env: dict[str, str], tmp_path: Path
) -> None:
    llm_fake.queue("workers", workers_stream([f"w{i} " for i in range(400)], delay=0.02))
    child = spawn(env, tmp_path)
    try:
        await expect(child, "you> ")
        child.sendline("Talk forever")
        await expect(child, "w5 ")
        child.kill(signal.SIGKILL)  # no chance to finish the turn
        await child.expect(pexpect.EOF, async_=True)
    finally:
        child.close(force=True)

    child = spawn(env, tmp_path)
    try:
        await expect(child, r"your last reply was cut off when Parley stopped")
        await expect(child, "you> ")
        child.sendline("/quit")
        await child.expect(pexpect.EOF, async_=True)
    finally:
        child.close(force=True)

    from bot.store import Store

    store = await Store.open(env["DATABASE_URL"], migrate=False)
    try:
        (conversation,) = await store.list_conversations(
            platform="console", tenant_id="console:local", user_id=None
        )
        statuses = [(m.role, m.status) for m in await store.history(conversation.id)]
    finally:
        await store.close()
    assert statuses == [("user", "complete"), ("assistant", "interrupted")]


async def test_console_shows_a_reasoning_model_thinking_then_only_its_answer(
    llm_fake: LLMFake, env: dict[str, str], tmp_path: Path
) -> None:
    thoughts = [
        sse({"choices": [{"index": 0, "delta": {"reasoning_content": f"step {i}. "}}]})
        for i in range(6)
    ]
    answer = [sse({"response": "It is "}), sse({"response": "four."}), sse("[DONE]")]
    llm_fake.queue("workers", raw_stream(*thoughts, *answer, delay=0.4))
    child = spawn(env, tmp_path)
    child.logfile_read = printed = io.StringIO()
    try:
        await expect(child, "you> ")
        child.sendline("Think it over")
        await expect(child, r"\x1b\[2m\(thinking… 0 s\)")
        await expect(child, r"\(thinking… [12] s\)")  # the seconds go on in place
        await expect(child, r"\x08+\x1b\[KIt is four\.")  # erased, then the answer
        await expect(child, "you> ")
        child.sendline("/quit")
        await child.expect(pexpect.EOF, async_=True)
    finally:
        child.close(force=True)
    assert "It is four." in printed.getvalue()
    assert "step " not in printed.getvalue()  # the reasoning itself never
