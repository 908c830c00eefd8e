"""Workers AI native streaming, direct and through an authenticated AI Gateway."""

from __future__ import annotations

import time

import pytest

from bot.llm.types import (
    ConfigError,
    FinishReason,
    ProviderError,
    QuotaError,
    RequestError,
    StreamTruncated,
    TransientError,
    Usage,
)
from bot.llm.workers_ai import WorkersAIProvider
from tests.fakes.llm_server import LLMFake, raw_stream, sse, workers_error, workers_stream
from tests.unit.llm._support import chat_call, fail, run
from tests.unit.llm.conftest import ACCOUNT, GATEWAY, GATEWAY_TOKEN

MODEL = "@cf/meta/llama-3.1-8b-instruct"


async def test_native_happy_path_posts_to_run_with_max_tokens_always_sent(
    llm_fake: LLMFake, workers: WorkersAIProvider
) -> None:
    llm_fake.queue("workers", workers_stream(["New", " York", " City"], usage=(14, 16)))
    reply = await run(workers, chat_call(MODEL, max_tokens=512))
    assert reply.text == "New York City"
    assert reply.finish is FinishReason.STOP
    assert reply.usage == Usage(prompt_tokens=14, completion_tokens=16)
    call = llm_fake.calls[-1]
    assert call.path == f"/client/v4/accounts/{ACCOUNT}/ai/run/{MODEL}"
    assert call.params == {"account": ACCOUNT, "model": MODEL}
    assert call.headers["authorization"] == f"Bearer {llm_fake.cloudflare_token}"
    assert "cf-aig-authorization" not in call.headers
    assert call.body == {
        "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "Say hello"},
        ],
        "stream": True,
        "max_tokens": 512,
    }


async def test_temperature_is_sent_when_set(llm_fake: LLMFake, workers: WorkersAIProvider) -> None:
    await run(workers, chat_call(MODEL, temperature=0.7))
    assert llm_fake.calls[-1].body["temperature"] == 0.7


async def test_gateway_path_sends_both_authorization_headers(
    llm_fake: LLMFake, gateway: WorkersAIProvider
) -> None:
    llm_fake.queue("workers", workers_stream(["via ", "gateway"]))
    reply = await run(gateway, chat_call(MODEL, max_tokens=100))
    assert reply.text == "via gateway"
    call = llm_fake.calls[-1]
    assert call.path == f"/gateway/v1/{ACCOUNT}/{GATEWAY}/workers-ai/{MODEL}"
    assert call.headers["cf-aig-authorization"] == f"Bearer {GATEWAY_TOKEN}"
    assert call.headers["authorization"] == f"Bearer {llm_fake.cloudflare_token}"
    assert call.body["max_tokens"] == 100


async def test_authenticated_gateway_without_its_token_is_a_config_error(
    llm_fake: LLMFake,
) -> None:
    llm_fake.gateway_token = GATEWAY_TOKEN
    provider = WorkersAIProvider(
        ACCOUNT,
        llm_fake.cloudflare_token,
        gateway_id=GATEWAY,
        gateway_base_url=llm_fake.gateway_base,
    )
    try:
        error, _ = await fail(provider, chat_call(MODEL))
    finally:
        await provider.aclose()
    assert isinstance(error, ConfigError)
    assert error.status == 401


async def test_done_at_max_tokens_is_length(llm_fake: LLMFake, workers: WorkersAIProvider) -> None:
    llm_fake.queue("workers", workers_stream(["a", "b", "c"], usage=(10, 3)))
    reply = await run(workers, chat_call(MODEL, max_tokens=3))
    assert reply.finish is FinishReason.LENGTH


async def test_eof_without_done_after_text_is_truncated_after_output(
    llm_fake: LLMFake, workers: WorkersAIProvider
) -> None:
    llm_fake.queue("workers", workers_stream(["partial", " text"], done=False))
    error, text = await fail(workers, chat_call(MODEL))
    assert isinstance(error, StreamTruncated)
    assert text == "partial text"
    assert error.after_output is True
    assert error.provider == "workers-ai"


async def test_eof_without_done_before_text_is_truncated_without_after_output(
    llm_fake: LLMFake, workers: WorkersAIProvider
) -> None:
    llm_fake.queue("workers", raw_stream(sse({"response": ""})))
    error, _ = await fail(workers, chat_call(MODEL))
    assert isinstance(error, StreamTruncated)
    assert error.after_output is False


async def test_openai_shaped_chunks_are_accepted_natively(
    llm_fake: LLMFake, workers: WorkersAIProvider
) -> None:
    llm_fake.queue(
        "workers",
        raw_stream(
            sse({"choices": [{"delta": {"content": "Hel"}}]}),
            sse({"choices": [{"delta": {"reasoning_content": "thinking"}}]}),
            sse({"choices": [{"delta": {"content": "lo"}, "finish_reason": "stop"}]}),
            sse({"choices": [], "usage": {"prompt_tokens": 4, "completion_tokens": 2}}),
            sse("[DONE]"),
        ),
    )
    reply = await run(workers, chat_call(MODEL))
    assert reply.text == "Hello"
    assert reply.usage == Usage(4, 2)


async def test_daily_allocation_used_up_is_quota_until_next_utc_midnight(
    llm_fake: LLMFake, workers: WorkersAIProvider
) -> None:
    llm_fake.queue("workers", workers_error(3036))
    error, _ = await fail(workers, chat_call(MODEL))
    assert isinstance(error, QuotaError)
    assert error.code == "3036"
    assert error.status == 429
    midnight = (int(time.time()) // 86_400 + 1) * 86_400
    assert error.reset_at == pytest.approx(midnight, abs=1)


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        (3040, TransientError),
        (3007, TransientError),
        (5007, ConfigError),
        (3042, ConfigError),
        (5016, ConfigError),
        (5004, RequestError),
        (3006, RequestError),
    ],
)
async def test_error_envelopes_are_classified_by_code(
    llm_fake: LLMFake, workers: WorkersAIProvider, code: int, expected: type[ProviderError]
) -> None:
    llm_fake.queue("workers", workers_error(code))
    error, _ = await fail(workers, chat_call(MODEL))
    assert type(error) is expected
    assert error.code == str(code)


async def test_capacity_error_keeps_the_providers_message(
    llm_fake: LLMFake, workers: WorkersAIProvider
) -> None:
    llm_fake.queue("workers", workers_error(3040))
    error, _ = await fail(workers, chat_call(MODEL))
    assert str(error) == "workers-ai: Capacity temporarily exceeded, please try again. (HTTP 429)"


async def test_wrong_token_is_a_config_error(llm_fake: LLMFake) -> None:
    provider = WorkersAIProvider(ACCOUNT, "wrong-token", api_base_url=llm_fake.cloudflare_api_base)
    try:
        error, _ = await fail(provider, chat_call(MODEL))
    finally:
        await provider.aclose()
    assert isinstance(error, ConfigError)
    assert error.status == 401
