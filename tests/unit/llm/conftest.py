from __future__ import annotations

from collections.abc import AsyncIterator

import pytest_asyncio

from bot.llm.anthropic import AnthropicProvider
from bot.llm.openai_compat import OpenAICompatProvider
from bot.llm.workers_ai import WorkersAIProvider
from tests.fakes.llm_server import LLMFake, llm_fake

__all__ = ["llm_fake"]  # re-exported so pytest finds the fixture

ACCOUNT = "acct-0123"
GATEWAY = "gw-main"
GATEWAY_TOKEN = "gw-secret-token-5678"


@pytest_asyncio.fixture
async def openai(llm_fake: LLMFake) -> AsyncIterator[OpenAICompatProvider]:
    provider = OpenAICompatProvider("openai", llm_fake.openai_base, llm_fake.openai_key)
    yield provider
    await provider.aclose()


@pytest_asyncio.fixture
async def workers(llm_fake: LLMFake) -> AsyncIterator[WorkersAIProvider]:
    provider = WorkersAIProvider(
        ACCOUNT, llm_fake.cloudflare_token, api_base_url=llm_fake.cloudflare_api_base
    )
    yield provider
    await provider.aclose()


@pytest_asyncio.fixture
async def gateway(llm_fake: LLMFake) -> AsyncIterator[WorkersAIProvider]:
    """Workers AI through an authenticated AI Gateway (the fake demands cf-aig-authorization)."""
    llm_fake.gateway_token = GATEWAY_TOKEN
    provider = WorkersAIProvider(
        ACCOUNT,
        llm_fake.cloudflare_token,
        gateway_id=GATEWAY,
        gateway_base_url=llm_fake.gateway_base,
        gateway_token=GATEWAY_TOKEN,
    )
    yield provider
    await provider.aclose()


@pytest_asyncio.fixture
async def anthropic(llm_fake: LLMFake) -> AsyncIterator[AnthropicProvider]:
    provider = AnthropicProvider(llm_fake.anthropic_key, base_url=llm_fake.anthropic_base)
    yield provider
    await provider.aclose()
