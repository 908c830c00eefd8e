"""A full run with secrets configured never prints them: stdout, stderr and DEBUG JSON logs."""

from __future__ import annotations

import json
from pathlib import Path

import pexpect

from tests.e2e.conftest import run_bot
from tests.e2e.test_console import expect, spawn
from tests.fakes.llm_server import LLMFake, workers_error, workers_stream

# Secrets the fake does not check are still configured, so any path that logs settings shows them.
EXTRA_SECRETS = {
    "GROQ_API_KEY": "gsk_groq-secret-value-1234567890",
    "REPLICATE_API_TOKEN": "r8_replicate-secret-value-123456",
    "GOOGLE_API_KEY": "AIza-google-secret-value-1234567",
    "OPENAI_COMPAT_API_KEY": "compat-secret-value-1234567890",
    "SLACK_SIGNING_SECRET": "slack-signing-secret-123456",
}


def secrets_of(env: dict[str, str]) -> list[str]:
    names = ("CLOUDFLARE_API_TOKEN", "OPENAI_API_KEY", "ANTHROPIC_API_KEY", *EXTRA_SECRETS)
    return [env[name] for name in names]


async def test_ask_and_console_never_print_a_configured_secret(
    llm_fake: LLMFake, env: dict[str, str], tmp_path: Path
) -> None:
    env = env | EXTRA_SECRETS | {"LOG_LEVEL": "DEBUG", "LOG_FORMAT": "json"}
    # Groq pointed at the fake OpenAI with the wrong key: its 401 echoes a masked key back.
    env |= {"GROQ_BASE_URL": llm_fake.openai_base}
    llm_fake.queue("workers", workers_stream(["fine"]))
    ok = await run_bot("ask", "-v", "hello", env=env, cwd=tmp_path)
    failed = await run_bot(
        "ask", "-v", "-m", "groq:llama-3.1-8b-instant", "hi", env=env, cwd=tmp_path
    )
    assert ok.code == 0 and failed.code == 1
    lines = (ok.stderr + failed.stderr).splitlines()
    logs = [json.loads(line) for line in lines if line.startswith("{")]
    assert logs and all({"ts", "level", "logger", "msg"} <= set(entry) for entry in logs)

    llm_fake.queue("workers", workers_stream(["streamed"]), workers_error(3040))
    child = spawn(env, tmp_path)
    transcript = []
    try:
        await expect(child, "you> ")
        child.sendline("first")
        await expect(child, "streamed")
        await expect(child, "you> ")
        transcript.append(child.before or "")
        child.sendline("second")
        await expect(child, "you> ")
        transcript.append(child.before or "")
        child.sendline("/quit")
        await child.expect(pexpect.EOF, async_=True)
        transcript.append(child.before or "")
    finally:
        child.close(force=True)

    output = "\n".join([ok.stdout, ok.stderr, failed.stdout, failed.stderr, *transcript])
    assert "Incorrect API key" in failed.stderr or "401" in output  # the error path ran
    for secret in secrets_of(env):
        assert secret not in output
        assert secret[:12] not in output
