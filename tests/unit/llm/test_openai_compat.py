"""OpenAI-compatible Chat Completions streaming against the strict fake."""

from __future__ import annotations

import httpx
import pytest

from bot.llm.openai_compat import OpenAICompatProvider
from bot.llm.types import (
    ConfigError,
    FinishReason,
    Message,
    QuotaError,
    RequestError,
    TransientError,
    Usage,
)
from tests.fakes.llm_server import LLMFake, openai_error, openai_stream, raw_stream, sse
from tests.unit.llm._support import chat_call, fail, run


async def test_happy_path_reassembles_text_usage_and_finish(
    llm_fake: LLMFake, openai: OpenAICompatProvider
) -> None:
    llm_fake.queue("openai", openai_stream(["The", " answer", " is 42."], usage=(17, 5)))
    reply = await run(openai, chat_call("gpt-4o-mini", max_tokens=300, temperature=0.3))
    assert reply.text == "The answer is 42."
    assert reply.finish is FinishReason.STOP
    assert reply.usage == Usage(prompt_tokens=17, completion_tokens=5)
    call = llm_fake.calls_to("openai")[-1]
    assert call.headers["authorization"] == f"Bearer {llm_fake.openai_key}"
    assert call.body == {
        "model": "gpt-4o-mini",
        "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "Say hello"},
        ],
        "stream": True,
        "stream_options": {"include_usage": True},
        "max_tokens": 300,
        "temperature": 0.3,
    }


async def test_temperature_is_left_out_when_unset(
    llm_fake: LLMFake, openai: OpenAICompatProvider
) -> None:
    await run(openai, chat_call())
    assert "temperature" not in llm_fake.calls[-1].body


async def test_extra_body_fields_and_headers_are_sent(llm_fake: LLMFake) -> None:
    provider = OpenAICompatProvider(
        "openrouter",
        llm_fake.openai_base + "/",
        llm_fake.openai_key,
        extra_headers={"HTTP-Referer": "https://parley.example", "X-Title": "Parley"},
    )
    try:
        await run(provider, chat_call(extra={"models": ["a", "b"], "stream": False}))
    finally:
        await provider.aclose()
    call = llm_fake.calls[-1]
    assert call.path == "/openai/v1/chat/completions"
    assert call.headers["x-title"] == "Parley"
    assert call.body["models"] == ["a", "b"]
    assert call.body["stream"] is True  # extra never overrides the protocol's own fields


async def test_a_keyless_server_gets_no_authorization_header(llm_fake: LLMFake) -> None:
    llm_fake.openai_key = None  # an Ollama / vLLM that wants no key
    provider = OpenAICompatProvider("ollama", llm_fake.openai_base, None)
    try:
        reply = await run(provider)
    finally:
        await provider.aclose()
    assert reply.text == "Hello from the fake"
    assert "authorization" not in llm_fake.calls[-1].headers


@pytest.mark.parametrize(
    ("wire", "expected"),
    [
        ("stop", FinishReason.STOP),
        ("length", FinishReason.LENGTH),
        ("tool_calls", FinishReason.TOOL_CALLS),
        ("function_call", FinishReason.TOOL_CALLS),
        ("content_filter", FinishReason.CONTENT_FILTER),
        ("something_new", FinishReason.STOP),
    ],
)
async def test_finish_reasons_are_mapped(
    llm_fake: LLMFake, openai: OpenAICompatProvider, wire: str, expected: FinishReason
) -> None:
    llm_fake.queue("openai", openai_stream(["x"], finish=wire))
    assert (await run(openai)).finish is expected


async def test_done_without_finish_reason_at_max_tokens_is_length(
    llm_fake: LLMFake, openai: OpenAICompatProvider
) -> None:
    llm_fake.queue("openai", openai_stream(["a", "b"], finish=None, usage=(5, 2)))
    reply = await run(openai, chat_call(max_tokens=2))
    assert reply.finish is FinishReason.LENGTH


async def test_workers_ai_native_chunks_on_the_compat_path_are_read(
    llm_fake: LLMFake, openai: OpenAICompatProvider
) -> None:
    usage = {"prompt_tokens": 9, "completion_tokens": 2, "neurons": 0.5}
    llm_fake.queue(
        "openai",
        raw_stream(
            sse({"response": "Hi", "p": "abc"}),
            sse({"response": " there"}),
            sse({"response": "", "usage": usage}),
            sse("[DONE]"),
        ),
    )
    reply = await run(openai)
    assert reply.text == "Hi there"
    assert reply.usage == Usage(9, 2)
    assert reply.finish is FinishReason.STOP


async def test_finish_reason_error_is_a_transient_failure(
    llm_fake: LLMFake, openai: OpenAICompatProvider
) -> None:
    event = sse({"choices": [{"delta": {"content": ""}, "finish_reason": "error"}]})
    llm_fake.queue("openai", raw_stream(event))
    error, _ = await fail(openai)
    assert isinstance(error, TransientError)


async def test_insufficient_quota_is_quota_and_never_transient(
    llm_fake: LLMFake, openai: OpenAICompatProvider
) -> None:
    message = "You exceeded your current quota, please check your plan and billing details."
    reply = openai_error(429, "insufficient_quota", "insufficient_quota", message)
    llm_fake.queue("openai", reply)
    error, _ = await fail(openai)
    assert isinstance(error, QuotaError)
    assert error.status == 429
    assert error.code == "insufficient_quota"
    assert error.message == message


async def test_rate_limit_is_transient_with_retry_after_parsed(
    llm_fake: LLMFake, openai: OpenAICompatProvider
) -> None:
    reply = openai_error(
        429, "requests", "rate_limit_exceeded", "Rate limit reached", retry_after=3
    )
    llm_fake.queue("openai", reply)
    error, _ = await fail(openai)
    assert type(error) is TransientError
    assert error.retry_after == 3.0
    assert error.provider == "openai"


async def test_retry_after_ms_takes_precedence(
    llm_fake: LLMFake, openai: OpenAICompatProvider
) -> None:
    reply = openai_error(
        429, "tokens", "rate_limit_exceeded", headers={"retry-after-ms": "1500"}, retry_after=9
    )
    llm_fake.queue("openai", reply)
    error, _ = await fail(openai)
    assert error.retry_after == 1.5


async def test_wrong_key_is_a_config_error(llm_fake: LLMFake) -> None:
    provider = OpenAICompatProvider("openai", llm_fake.openai_base, "sk-wrong-key-0000")
    try:
        error, _ = await fail(provider)
    finally:
        await provider.aclose()
    assert isinstance(error, ConfigError)
    assert error.status == 401


async def test_missing_key_is_a_config_error(llm_fake: LLMFake) -> None:
    provider = OpenAICompatProvider("openai", llm_fake.openai_base, None)
    try:
        error, _ = await fail(provider)
    finally:
        await provider.aclose()
    assert isinstance(error, ConfigError)


async def test_bad_request_is_a_request_error(
    llm_fake: LLMFake, openai: OpenAICompatProvider
) -> None:
    # The fake rejects an empty message list the way OpenAI does.
    error, _ = await fail(openai, chat_call(messages=()))
    assert isinstance(error, RequestError)
    assert error.status == 400


async def test_unknown_model_is_a_config_error(
    llm_fake: LLMFake, openai: OpenAICompatProvider
) -> None:
    message = "The model `gpt-nope` does not exist or you do not have access to it."
    llm_fake.queue("openai", openai_error(404, "invalid_request_error", "model_not_found", message))
    error, _ = await fail(openai, chat_call("gpt-nope"))
    assert isinstance(error, ConfigError)


async def test_openrouter_402_is_quota(llm_fake: LLMFake, openai: OpenAICompatProvider) -> None:
    reply = openai_error(402, "payment_required", None, "Insufficient credits")
    llm_fake.queue("openai", reply)
    error, _ = await fail(openai)
    assert isinstance(error, QuotaError)


async def test_server_overload_is_transient(
    llm_fake: LLMFake, openai: OpenAICompatProvider
) -> None:
    llm_fake.queue("openai", openai_error(503, "service_unavailable_error", "server_is_overloaded"))
    error, _ = await fail(openai)
    assert type(error) is TransientError


async def test_message_roles_and_order_are_sent_verbatim(
    llm_fake: LLMFake, openai: OpenAICompatProvider
) -> None:
    messages = (Message("user", "a"), Message("assistant", "b"), Message("user", "c"))
    await run(openai, chat_call(messages=messages))
    assert [m["role"] for m in llm_fake.calls[-1].body["messages"]] == [
        "user",
        "assistant",
        "user",
    ]


async def test_aclose_closes_only_a_client_the_provider_created(llm_fake: LLMFake) -> None:
    async with httpx.AsyncClient() as borrowed:
        provider = OpenAICompatProvider("a", llm_fake.openai_base, None, client=borrowed)
        await provider.aclose()
        assert not borrowed.is_closed
    owning = OpenAICompatProvider("b", llm_fake.openai_base, None)
    await owning.aclose()
    assert owning._client.is_closed
