"""Anthropic Messages API streaming against the strict fake."""

from __future__ import annotations

import pytest

from bot.llm.anthropic import AnthropicProvider
from bot.llm.types import (
    ConfigError,
    FinishReason,
    Message,
    QuotaError,
    RequestError,
    StreamTruncated,
    TransientError,
    Usage,
)
from tests.fakes.llm_server import (
    LLMFake,
    anthropic_error,
    anthropic_event,
    anthropic_stream,
    raw_stream,
)
from tests.unit.llm._support import chat_call, fail, run

MODEL = "claude-test"
OVERLOADED = anthropic_event("error", error={"type": "overloaded_error", "message": "Overloaded"})


async def test_happy_path_lifts_system_merges_turns_and_reads_usage(
    llm_fake: LLMFake, anthropic: AnthropicProvider
) -> None:
    llm_fake.queue("anthropic", anthropic_stream(["Hello", ", ", "world"], usage=(25, 7)))
    messages = (
        Message("system", "Be brief."),
        Message("user", "Hi"),
        Message("user", "Still there?"),
        Message("assistant", "Yes."),
        Message("system", "Use English."),
        Message("user", "Greet me"),
    )
    reply = await run(anthropic, chat_call(MODEL, messages=messages, max_tokens=200))
    assert reply.text == "Hello, world"
    assert reply.finish is FinishReason.STOP
    assert reply.usage == Usage(prompt_tokens=25, completion_tokens=7)
    call = llm_fake.calls[-1]
    assert call.path == "/anthropic/v1/messages"
    assert call.headers["x-api-key"] == llm_fake.anthropic_key
    assert call.headers["anthropic-version"] == "2023-06-01"
    assert "authorization" not in call.headers
    assert call.body == {
        "model": MODEL,
        "max_tokens": 200,
        "stream": True,
        "system": "Be brief.\n\nUse English.",
        "messages": [
            {"role": "user", "content": "Hi\n\nStill there?"},
            {"role": "assistant", "content": "Yes."},
            {"role": "user", "content": "Greet me"},
        ],
    }


async def test_no_system_field_without_system_messages_and_temperature_when_set(
    llm_fake: LLMFake, anthropic: AnthropicProvider
) -> None:
    await run(anthropic, chat_call(MODEL, messages=(Message("user", "x"),), temperature=0.2))
    body = llm_fake.calls[-1].body
    assert "system" not in body
    assert body["temperature"] == 0.2


async def test_thinking_is_hidden(llm_fake: LLMFake, anthropic: AnthropicProvider) -> None:
    llm_fake.queue("anthropic", anthropic_stream(["Answer"], thinking=["Let me", " think"]))
    reply = await run(anthropic, chat_call(MODEL))
    assert reply.text == "Answer"


@pytest.mark.parametrize(
    ("stop_reason", "expected"),
    [
        ("end_turn", FinishReason.STOP),
        ("stop_sequence", FinishReason.STOP),
        ("max_tokens", FinishReason.LENGTH),
        ("tool_use", FinishReason.TOOL_CALLS),
        ("refusal", FinishReason.CONTENT_FILTER),
    ],
)
async def test_stop_reasons_are_mapped(
    llm_fake: LLMFake, anthropic: AnthropicProvider, stop_reason: str, expected: FinishReason
) -> None:
    llm_fake.queue("anthropic", anthropic_stream(["x"], stop_reason=stop_reason))
    assert (await run(anthropic, chat_call(MODEL))).finish is expected


async def test_cached_prompt_tokens_count_as_prompt_tokens(
    llm_fake: LLMFake, anthropic: AnthropicProvider
) -> None:
    usage = {"input_tokens": 5, "cache_read_input_tokens": 100, "cache_creation_input_tokens": 20}
    message = {"id": "m", "type": "message", "role": "assistant", "usage": usage}
    delta = {"type": "text_delta", "text": "ok"}
    llm_fake.queue(
        "anthropic",
        raw_stream(
            anthropic_event("message_start", message=message),
            anthropic_event("content_block_delta", index=0, delta=delta),
            anthropic_event(
                "message_delta", delta={"stop_reason": "end_turn"}, usage={"output_tokens": 3}
            ),
            anthropic_event("message_stop"),
        ),
    )
    reply = await run(anthropic, chat_call(MODEL))
    assert reply.usage == Usage(prompt_tokens=125, completion_tokens=3)


async def test_split_events_and_crlf_reassemble(
    llm_fake: LLMFake, anthropic: AnthropicProvider
) -> None:
    llm_fake.queue("anthropic", anthropic_stream(["Grüße ", "🌍"]).crlf().split_every(5))
    reply = await run(anthropic, chat_call(MODEL))
    assert reply.text == "Grüße 🌍"


async def test_eof_without_message_stop_or_stop_reason_is_truncated(
    llm_fake: LLMFake, anthropic: AnthropicProvider
) -> None:
    llm_fake.queue("anthropic", anthropic_stream(["cut"], stop_reason=None, stop=False))
    error, text = await fail(anthropic, chat_call(MODEL))
    assert isinstance(error, StreamTruncated)
    assert text == "cut"
    assert error.after_output is True


async def test_overloaded_event_before_output_is_transient_without_after_output(
    llm_fake: LLMFake, anthropic: AnthropicProvider
) -> None:
    llm_fake.queue("anthropic", raw_stream(anthropic_event("ping"), OVERLOADED))
    error, _ = await fail(anthropic, chat_call(MODEL))
    assert type(error) is TransientError
    assert error.after_output is False
    assert error.message == "Overloaded"


async def test_overloaded_event_after_output_sets_after_output(
    llm_fake: LLMFake, anthropic: AnthropicProvider
) -> None:
    script = anthropic_stream(["Half"], stop_reason=None, stop=False).then(OVERLOADED)
    llm_fake.queue("anthropic", script)
    error, text = await fail(anthropic, chat_call(MODEL))
    assert type(error) is TransientError
    assert text == "Half"
    assert error.after_output is True


async def test_http_529_overloaded_is_transient(
    llm_fake: LLMFake, anthropic: AnthropicProvider
) -> None:
    llm_fake.queue("anthropic", anthropic_error(529, "overloaded_error", "Overloaded"))
    error, _ = await fail(anthropic, chat_call(MODEL))
    assert type(error) is TransientError
    assert error.status == 529


async def test_rate_limit_is_transient_with_retry_after(
    llm_fake: LLMFake, anthropic: AnthropicProvider
) -> None:
    reply = anthropic_error(429, "rate_limit_error", "Number of requests exceeded", retry_after=20)
    llm_fake.queue("anthropic", reply)
    error, _ = await fail(anthropic, chat_call(MODEL))
    assert type(error) is TransientError
    assert error.retry_after == 20.0


async def test_low_credit_balance_is_quota(llm_fake: LLMFake, anthropic: AnthropicProvider) -> None:
    message = (
        "Your credit balance is too low to access the Anthropic API. "
        "Please go to Plans & Billing to upgrade or purchase credits."
    )
    llm_fake.queue("anthropic", anthropic_error(400, "invalid_request_error", message))
    error, _ = await fail(anthropic, chat_call(MODEL))
    assert isinstance(error, QuotaError)


async def test_invalid_request_is_a_request_error(
    llm_fake: LLMFake, anthropic: AnthropicProvider
) -> None:
    llm_fake.queue("anthropic", anthropic_error(400, "invalid_request_error", "prompt is too long"))
    error, _ = await fail(anthropic, chat_call(MODEL))
    assert isinstance(error, RequestError)


async def test_wrong_key_is_a_config_error(llm_fake: LLMFake) -> None:
    provider = AnthropicProvider("sk-ant-wrong", base_url=llm_fake.anthropic_base)
    try:
        error, _ = await fail(provider, chat_call(MODEL))
    finally:
        await provider.aclose()
    assert isinstance(error, ConfigError)
    assert error.status == 401


async def test_unknown_model_is_a_config_error(
    llm_fake: LLMFake, anthropic: AnthropicProvider
) -> None:
    llm_fake.queue("anthropic", anthropic_error(404, "not_found_error", "model: claude-nope"))
    error, _ = await fail(anthropic, chat_call("claude-nope"))
    assert isinstance(error, ConfigError)
