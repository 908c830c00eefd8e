"""No API key or token ever reaches a ProviderError's message, str or repr."""

from __future__ import annotations

import socket

import pytest

from bot.llm.anthropic import AnthropicProvider
from bot.llm.openai_compat import OpenAICompatProvider
from bot.llm.types import ChatProvider, ProviderError
from bot.llm.workers_ai import WorkersAIProvider
from tests.fakes.llm_server import (
    LLMFake,
    ReplyScript,
    Script,
    anthropic_error,
    openai_error,
    openai_stream,
    raw_stream,
    sse,
    workers_error,
)
from tests.unit.llm._support import chat_call, fail

# Realistic-looking keys, and plain ones no pattern would catch: redaction must know them.
OPENAI_KEYS = ["sk-proj-Q9x2Lm7Tt4Vb8Nc1Rz6Yw3Ae5Kd0Hj", "hunter2hunter2"]
CF_TOKEN = "Zk3Qp9Lx2Vm7Tb4Nc8Rw1Ys6Ae0Hd5Gj3Fk9Lp2"
GW_TOKEN = "gwtok-plain"
ANTHROPIC_KEY = "sk-ant-api03-Xy7Zq2Lm9Tb4Vc8Nw1Rs6Ae0Hd5Gj3Fk"


def _assert_clean(error: ProviderError, *secrets: str) -> None:
    shown = [str(error), repr(error), error.message, *map(str, error.args)]
    for secret in secrets:
        for text in shown:
            assert secret not in text
            assert secret[-12:] not in text  # nor a recognisable tail of it


def _echoes(secret: str) -> list[Script]:
    """Error replies that (carelessly) quote the secret back, in every shape we read."""
    return [
        openai_error(401, "invalid_request_error", "invalid_api_key", f"Incorrect key: {secret}"),
        openai_error(400, "invalid_request_error", None, f"header Authorization: Bearer {secret}"),
        workers_error(10000, 401, f"Authentication error for token {secret}"),
        anthropic_error(403, "permission_error", f"key {secret} may not use this model"),
        ReplyScript(500, {"message": f"upstream rejected {secret}"}),
        raw_stream(sse({"error": {"message": f"in-band: {secret}", "type": "server_error"}})),
        openai_stream(["partial"], finish=None, done=False).then(
            sse({"type": "error", "error": {"type": "api_error", "message": secret}}, "error")
        ),
    ]


@pytest.mark.parametrize("key", OPENAI_KEYS, ids=["pattern", "plain"])
async def test_openai_compat_errors_never_show_the_key(llm_fake: LLMFake, key: str) -> None:
    llm_fake.openai_key = key
    provider = OpenAICompatProvider("openai", llm_fake.openai_base, key)
    try:
        for script in _echoes(key):
            llm_fake.queue("openai", script)
            error, _ = await fail(provider)
            _assert_clean(error, key)
    finally:
        await provider.aclose()


async def test_a_masked_key_echoed_by_the_api_is_not_shown(llm_fake: LLMFake) -> None:
    key = OPENAI_KEYS[0]
    provider = OpenAICompatProvider("openai", llm_fake.openai_base, key)  # the fake wants another
    try:
        error, _ = await fail(provider)
    finally:
        await provider.aclose()
    assert "Incorrect API key provided" in error.message
    _assert_clean(error, key)
    assert key[:6] + "*" not in error.message


async def test_workers_ai_errors_never_show_the_api_or_gateway_token(llm_fake: LLMFake) -> None:
    llm_fake.cloudflare_token = CF_TOKEN
    llm_fake.gateway_token = GW_TOKEN
    provider = WorkersAIProvider(
        "acct",
        CF_TOKEN,
        gateway_id="gw",
        gateway_base_url=llm_fake.gateway_base,
        gateway_token=GW_TOKEN,
    )
    try:
        for script in _echoes(CF_TOKEN) + _echoes(GW_TOKEN):
            llm_fake.queue("workers", script)
            error, _ = await fail(provider)
            _assert_clean(error, CF_TOKEN, GW_TOKEN)
    finally:
        await provider.aclose()


async def test_anthropic_errors_never_show_the_key(llm_fake: LLMFake) -> None:
    llm_fake.anthropic_key = ANTHROPIC_KEY
    provider = AnthropicProvider(ANTHROPIC_KEY, base_url=llm_fake.anthropic_base)
    try:
        for script in _echoes(ANTHROPIC_KEY):
            llm_fake.queue("anthropic", script)
            error, _ = await fail(provider)
            _assert_clean(error, ANTHROPIC_KEY)
    finally:
        await provider.aclose()


async def test_transport_errors_never_show_the_url_or_key() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    providers: list[ChatProvider] = [
        OpenAICompatProvider("openai", f"http://127.0.0.1:{port}/v1", OPENAI_KEYS[1]),
        WorkersAIProvider("acct", CF_TOKEN, api_base_url=f"http://127.0.0.1:{port}/client/v4"),
        AnthropicProvider(ANTHROPIC_KEY, base_url=f"http://127.0.0.1:{port}"),
    ]
    for provider in providers:
        try:
            error, _ = await fail(provider, chat_call())
        finally:
            await provider.aclose()
        _assert_clean(error, OPENAI_KEYS[1], CF_TOKEN, ANTHROPIC_KEY, f"127.0.0.1:{port}")
