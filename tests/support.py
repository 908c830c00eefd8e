"""Settings and environments that point every provider at the local LLM fake."""

from __future__ import annotations

from typing import Any

from bot.config import Settings
from tests.fakes.llm_server import LLMFake

ACCOUNT = "acct-test"


def provider_settings(fake: LLMFake) -> dict[str, Any]:
    return {
        "cloudflare_account_id": ACCOUNT,
        "cloudflare_api_token": fake.cloudflare_token,
        "cloudflare_api_base_url": fake.cloudflare_api_base,
        "cloudflare_ai_gateway_base_url": fake.gateway_base,
        "openai_api_key": fake.openai_key,
        "openai_base_url": fake.openai_base,
        "gemini_api_key": fake.openai_key,
        "gemini_base_url": fake.gemini_base,
        "xai_api_key": fake.openai_key,
        "xai_base_url": fake.xai_base,
        "anthropic_api_key": fake.anthropic_key,
        "anthropic_base_url": fake.anthropic_base,
    }


def settings_for(fake: LLMFake, **overrides: Any) -> Settings:
    values = provider_settings(fake) | {"database_url": "sqlite+aiosqlite:///:memory:"}
    return Settings(_env_file=None, **(values | overrides))  # type: ignore[call-arg]


def env_for(fake: LLMFake, **overrides: str) -> dict[str, str]:
    """Environment variables for a `python -m bot` subprocess using the fake."""
    values = {k.upper(): str(v) for k, v in provider_settings(fake).items()}
    return values | overrides
