"""/search through the console process: a word from earlier turns, stemmed, with its snippet."""

from __future__ import annotations

from pathlib import Path

import pexpect

from tests.e2e.test_console import expect, spawn
from tests.fakes.llm_server import LLMFake, workers_stream


async def test_console_search_finds_earlier_turns_and_says_when_nothing_matches(
    llm_fake: LLMFake, env: dict[str, str], tmp_path: Path
) -> None:
    llm_fake.queue(
        "workers",
        workers_stream(["Open Settings, ", "then Login."], usage=(30, 4)),
        workers_stream(["Paris."], usage=(20, 2)),
    )
    child = spawn(env, tmp_path)
    try:
        await expect(child, "you> ")
        child.sendline("How do I reset my login password?")
        await expect(child, r"parley> Open Settings, then Login\.")
        await expect(child, "you> ")
        child.sendline("What is the capital of France?")
        await expect(child, r"parley> Paris\.")
        await expect(child, "you> ")
        child.sendline("/search logins")  # stemmed: login, Login
        await expect(child, r"Found in your conversations here")
        await expect(child, r"1\. [^\n]+ · Parley: Open Settings, then Login\.")
        await expect(child, r"2\. [^\n]+ · you: How do I reset my login password\?")
        await expect(child, "Only your own messages")
        child.sendline("/search capital of Germany")
        await expect(child, "None of your messages here contain capital of Germany.")
        child.sendline("/search ?!")
        await expect(child, "Give /search a word or two to look for.")
        child.sendline("/search")
        await expect(child, "words")
        child.sendline("/quit")
        await child.expect(pexpect.EOF, async_=True)
    finally:
        child.close(force=True)
    assert child.exitstatus == 0
