"""`python -m bot ask` with the stream shapes of real providers and the whole model line-up."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import run_bot
from tests.fakes.llm_server import LLMFake, anthropic_stream, openai_stream, raw_stream, sse

BASE = {"id": "chatcmpl-x", "object": "chat.completion.chunk", "created": 1, "model": "m"}
DONE = sse("[DONE]")


def chunk(delta: dict[str, Any], finish: str | None = None) -> bytes:
    return sse({**BASE, "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]})


async def test_ask_prints_the_text_of_content_parts(
    llm_fake: LLMFake, env: dict[str, str], tmp_path: Path
) -> None:
    thinking = {"type": "thinking", "thinking": [{"type": "text", "text": "Greeting."}]}
    llm_fake.queue(
        "openai",
        raw_stream(
            chunk({"role": "assistant", "content": [thinking]}),
            chunk({"content": [{"type": "text", "text": "Bonjour"}]}),
            chunk({"content": [{"type": "text", "text": " !"}]}),
            chunk({}, "stop"),
            DONE,
        ),
    )
    result = await run_bot("ask", "-m", "gpt-4o-mini", "Hi", env=env, cwd=tmp_path)
    assert (result.code, result.stdout) == (0, "Bonjour !\n")
    assert "Greeting" not in result.stdout + result.stderr  # reasoning never shown by ask
    assert result.stderr.splitlines()[0] == "parley: thinking…"


async def test_ask_hides_inline_reasoning_of_a_workers_reasoning_model(
    llm_fake: LLMFake, env: dict[str, str], tmp_path: Path
) -> None:
    pieces = ["The user asks", " for 2+2. </th", "ink>\n\n", "**4**"]
    events = [sse({"response": p}) for p in pieces]
    llm_fake.queue("workers", raw_stream(*events, DONE))
    result = await run_bot("ask", "-m", "qwq-32b", "2+2?", env=env, cwd=tmp_path)
    assert (result.code, result.stdout) == (0, "**4**\n")
    assert llm_fake.calls_to("workers")[0].params["model"] == "@cf/qwen/qwq-32b"
    lines = result.stderr.splitlines()
    assert lines[0] == "parley: thinking…" and lines[1].startswith("parley: thought for ")


@pytest.mark.parametrize(
    ("events", "message"),
    [
        ([chunk({"reasoning_content": "Hmm…"}), chunk({}, "length")], "whole token limit thinking"),
        ([chunk({"reasoning": "Hmm…"}), chunk({}, "stop")], "thought it over but gave no answer"),
        ([chunk({"content": ""}), chunk({}, "stop")], "returned an empty answer"),
    ],
    ids=["reasoned-to-the-limit", "reasoned-only", "empty"],
)
async def test_ask_with_no_text_says_why_and_exits_nonzero(
    llm_fake: LLMFake, env: dict[str, str], tmp_path: Path, events: list[bytes], message: str
) -> None:
    llm_fake.queue("openai", raw_stream(*events, DONE))
    result = await run_bot("ask", "-m", "gpt-4o-mini", "go", env=env, cwd=tmp_path)
    assert result.code == 1
    assert result.stdout == ""
    assert message in result.stderr.splitlines()[-1]


async def test_gemini_and_grok_go_to_their_own_endpoints_with_their_keys(
    llm_fake: LLMFake, env: dict[str, str], tmp_path: Path
) -> None:
    llm_fake.queue("openai", openai_stream(["From Gemini"]))
    gemini = await run_bot("ask", "-m", "gemini", "Hi", env=env, cwd=tmp_path)
    assert (gemini.code, gemini.stdout) == (0, "From Gemini\n")
    llm_fake.queue(
        "openai",
        raw_stream(
            chunk({"reasoning": "xAI thinks"}),
            chunk({"content": "From Grok"}),
            chunk({}, "stop"),
            DONE,
        ),
    )
    grok = await run_bot("ask", "-m", "grok-3-mini", "Hi", env=env, cwd=tmp_path)
    assert (grok.code, grok.stdout) == (0, "From Grok\n")
    first, second = llm_fake.calls_to("openai")
    assert (first.path, first.body["model"]) == (
        "/gemini/v1beta/openai/chat/completions",
        "gemini-2.5-flash",
    )
    assert (second.path, second.body["model"]) == ("/xai/v1/chat/completions", "grok-3-mini")
    assert first.headers["authorization"] == f"Bearer {env['GEMINI_API_KEY']}"


async def test_models_lists_capabilities_and_prices_per_million_tokens(
    env: dict[str, str], tmp_path: Path
) -> None:
    result = await run_bot("models", env=env, cwd=tmp_path)
    rows = {}
    for line in result.stdout.splitlines()[1:]:
        if cells := line.lstrip("* ").split():
            rows[cells[0]] = line
    assert "vision, tools" in rows["llama-4-scout"] and "$0.270 / $0.850" in rows["llama-4-scout"]
    assert (
        "reasoning" in rows["deepseek-r1-distill"]
        and "$0.497 / $4.881" in rows["deepseek-r1-distill"]
    )
    assert "reasoning" in rows["grok-3-mini"]
    assert "unpriced" in rows["qwen1.5-14b"]


async def test_ask_reads_anthropic_thinking_apart_from_the_answer(
    llm_fake: LLMFake, env: dict[str, str], tmp_path: Path
) -> None:
    llm_fake.queue(
        "anthropic",
        anthropic_stream(["Blue, ", "by scattering."], thinking=["Rayleigh", " scattering"]),
    )
    result = await run_bot("ask", "-m", "haiku", "Sky colour?", env=env, cwd=tmp_path)
    assert (result.code, result.stdout) == (0, "Blue, by scattering.\n")
    assert "Rayleigh" not in result.stdout + result.stderr
    assert result.stderr.startswith("parley: thinking…\nparley: thought for ")


async def test_ask_with_only_a_tool_call_names_the_tool(
    llm_fake: LLMFake, env: dict[str, str], tmp_path: Path
) -> None:
    call = {"name": "generate_image", "arguments": {"prompt": "a fox"}}
    last = {
        "response": "",
        "tool_calls": [call],
        "usage": {"prompt_tokens": 9, "completion_tokens": 5},
    }
    llm_fake.queue("workers", raw_stream(sse(last), DONE))
    result = await run_bot("ask", "Draw a fox", env=env, cwd=tmp_path)
    assert (result.code, result.stdout) == (1, "")
    assert result.stderr.strip() == (
        "parley: The model asked to use generate_image and wrote no answer."
    )
