"""`python -m bot ask` and the other commands, as a user runs them."""

from __future__ import annotations

import asyncio
import sys
import time
from pathlib import Path

import pytest

from tests.e2e.conftest import run_bot
from tests.fakes.llm_server import LLMFake, openai_stream, workers_error, workers_stream


async def test_ask_prints_only_the_answer_and_exits_zero(
    llm_fake: LLMFake, env: dict[str, str], tmp_path: Path
) -> None:
    llm_fake.queue("workers", workers_stream(["Hello", ", ", "wörld 😀", "!"]).split_every(5))
    result = await run_bot("ask", "Say hello", env=env, cwd=tmp_path)
    assert (result.code, result.stdout, result.stderr) == (0, "Hello, wörld 😀!\n", "")
    body = llm_fake.calls_to("workers")[0].body
    assert body["messages"][-1] == {"role": "user", "content": "Say hello"}
    assert body["max_tokens"] == 1024


async def test_ask_flushes_each_chunk_as_it_arrives(
    llm_fake: LLMFake, env: dict[str, str], tmp_path: Path
) -> None:
    llm_fake.queue("workers", workers_stream(["first ", "second ", "third"], delay=0.4))
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot",
        "ask",
        "go",
        env=env,
        cwd=tmp_path,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    assert process.stdout is not None
    first = await asyncio.wait_for(process.stdout.read(6), 20)
    first_at = time.monotonic()
    rest = await asyncio.wait_for(process.stdout.read(), 20)
    await process.wait()
    done_at = time.monotonic()
    assert first == b"first "
    assert rest == b"second third\n"
    assert done_at - first_at > 0.5  # the first words were on screen well before the end


async def test_ask_model_and_system_options_reach_the_provider(
    llm_fake: LLMFake, env: dict[str, str], tmp_path: Path
) -> None:
    llm_fake.queue("openai", openai_stream(["Bonjour"]))
    result = await run_bot(
        "ask", "-m", "gpt-4o-mini", "-s", "Answer in French", "Hi", env=env, cwd=tmp_path
    )
    assert result.stdout == "Bonjour\n"
    body = llm_fake.calls_to("openai")[0].body
    assert body["model"] == "gpt-4o-mini"
    assert body["messages"][0] == {"role": "system", "content": "Answer in French"}


async def test_ask_failure_mid_stream_keeps_partial_text_and_says_one_line(
    llm_fake: LLMFake, env: dict[str, str], tmp_path: Path
) -> None:
    llm_fake.queue("workers", workers_stream(["partial ", "text"], done=False).dropped())
    result = await run_bot("ask", "go", env=env, cwd=tmp_path)
    assert result.code == 1
    assert result.stdout.startswith("partial text")
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("parley: error:")
    assert llm_fake.cloudflare_token not in result.stderr


async def test_ask_with_every_provider_down_exits_nonzero_with_one_line(
    llm_fake: LLMFake, env: dict[str, str], tmp_path: Path
) -> None:
    llm_fake.queue("workers", workers_error(3040), workers_error(3040))
    env = env | {"OPENAI_API_KEY": "", "ANTHROPIC_API_KEY": ""}
    result = await run_bot("ask", "go", env=env, cwd=tmp_path)
    assert result.code == 1 and result.stdout == ""
    assert len(result.stderr.strip().splitlines()) == 1
    assert "Traceback" not in result.stderr


async def test_malformed_setting_fails_with_one_line_naming_it(
    env: dict[str, str], tmp_path: Path
) -> None:
    result = await run_bot("ask", "go", env=env | {"PORT": "eighty"}, cwd=tmp_path)
    assert result.code == 2
    assert result.stderr.startswith("parley: config error: PORT:")
    assert len(result.stderr.strip().splitlines()) == 1


async def test_unknown_default_model_is_a_config_error(env: dict[str, str], tmp_path: Path) -> None:
    result = await run_bot("ask", "go", env=env | {"DEFAULT_MODEL": "gpt-99"}, cwd=tmp_path)
    assert result.code == 2
    assert result.stderr.startswith("parley: config error: DEFAULT_MODEL: unknown model 'gpt-99'")


@pytest.mark.parametrize(
    ("fallback", "said"),
    [("gpt-99", "VISION_FALLBACK_MODEL: unknown model 'gpt-99'"),
     ("llama-3.1-8b", "VISION_FALLBACK_MODEL: llama-3.1-8b cannot see images")],
)  # fmt: skip
async def test_a_vision_fallback_that_cannot_see_is_a_config_error(
    env: dict[str, str], tmp_path: Path, fallback: str, said: str
) -> None:
    result = await run_bot("ask", "go", env=env | {"VISION_FALLBACK_MODEL": fallback}, cwd=tmp_path)
    assert result.code == 2
    assert result.stderr.startswith(f"parley: config error: {said}")


async def test_bad_database_url_is_one_line(env: dict[str, str], tmp_path: Path) -> None:
    result = await run_bot("db", "upgrade", env=env | {"DATABASE_URL": "nosuch://x"}, cwd=tmp_path)
    assert result.code == 2
    assert result.stderr.startswith("parley: config error: DATABASE_URL:")
    assert len(result.stderr.strip().splitlines()) == 1


async def test_db_upgrade_creates_the_database(env: dict[str, str], tmp_path: Path) -> None:
    result = await run_bot("db", "upgrade", env=env, cwd=tmp_path)
    assert result.code == 0, result.stderr
    assert "revision" in result.stdout and "(empty)" not in result.stdout
    assert (tmp_path / "parley.db").exists()


async def test_no_platform_and_no_terminal_says_what_to_configure(
    env: dict[str, str], tmp_path: Path
) -> None:
    result = await run_bot(env=env, cwd=tmp_path)
    assert result.code == 1
    assert "DISCORD_TOKEN" in result.stderr and "SLACK_BOT_TOKEN" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


async def test_help_models_and_providers_answer(env: dict[str, str], tmp_path: Path) -> None:
    assert (await run_bot("--help", env=env, cwd=tmp_path)).code == 0
    models = await run_bot("models", env=env, cwd=tmp_path)
    assert models.code == 0 and "llama-3.1-8b" in models.stdout and "$0.045" in models.stdout
    providers = await run_bot("providers", env=env | {"ANTHROPIC_API_KEY": ""}, cwd=tmp_path)
    assert "workers-ai" in providers.stdout and "set ANTHROPIC_API_KEY" in providers.stdout
    assert env["OPENAI_API_KEY"] not in providers.stdout
