"""Builds one chat provider per configured endpoint from Settings; says why the others are off."""

from __future__ import annotations

from dataclasses import dataclass

from bot.config import Settings
from bot.llm.types import ChatProvider


@dataclass(frozen=True, slots=True)
class ProviderStatus:
    name: str
    configured: bool
    reason: str  # what is missing, when not configured
    base_url: str


def _key(value: object) -> str | None:
    getter = getattr(value, "get_secret_value", None)
    return getter() if getter is not None else None


class ProviderRegistry:
    def __init__(self, providers: dict[str, ChatProvider], statuses: list[ProviderStatus]) -> None:
        self._providers = providers
        self.statuses = statuses

    def get(self, name: str) -> ChatProvider | None:
        return self._providers.get(name)

    def status(self, name: str) -> ProviderStatus | None:
        return next((s for s in self.statuses if s.name == name), None)

    async def aclose(self) -> None:
        for provider in self._providers.values():
            await provider.aclose()

    @classmethod
    def from_settings(cls, settings: Settings) -> ProviderRegistry:
        # Imported here so `python -m bot --help` does not pay for httpx.
        from bot.llm.anthropic import AnthropicProvider
        from bot.llm.openai_compat import OpenAICompatProvider
        from bot.llm.workers_ai import WorkersAIProvider

        providers: dict[str, ChatProvider] = {}
        statuses: list[ProviderStatus] = []

        def add(name: str, base_url: str, missing: str, build: object) -> None:
            if missing:
                statuses.append(ProviderStatus(name, False, missing, base_url))
                return
            assert callable(build)
            providers[name] = build()
            statuses.append(ProviderStatus(name, True, "", base_url))

        s = settings
        cf_missing = ", ".join(
            n
            for n, v in (
                ("CLOUDFLARE_ACCOUNT_ID", s.cloudflare_account_id),
                ("CLOUDFLARE_API_TOKEN", s.cloudflare_api_token),
            )
            if not v
        )
        cf_base = (
            f"{s.cloudflare_ai_gateway_base_url} (gateway {s.cloudflare_ai_gateway})"
            if s.cloudflare_ai_gateway
            else s.cloudflare_api_base_url
        )
        add(
            "workers-ai",
            cf_base,
            f"set {cf_missing}" if cf_missing else "",
            lambda: WorkersAIProvider(
                s.cloudflare_account_id or "",
                _key(s.cloudflare_api_token),
                api_base_url=s.cloudflare_api_base_url,
                gateway_id=s.cloudflare_ai_gateway,
                gateway_base_url=s.cloudflare_ai_gateway_base_url,
                gateway_token=_key(s.cloudflare_ai_gateway_token),
            ),
        )
        add(
            "anthropic",
            s.anthropic_base_url,
            "" if s.anthropic_api_key else "set ANTHROPIC_API_KEY",
            lambda: AnthropicProvider(_key(s.anthropic_api_key), base_url=s.anthropic_base_url),
        )
        compat: list[tuple[str, str | None, object, str]] = [
            ("openai", s.openai_base_url, s.openai_api_key, "OPENAI_API_KEY"),
            ("together", s.together_base_url, s.together_api_key, "TOGETHER_API_KEY"),
            ("groq", s.groq_base_url, s.groq_api_key, "GROQ_API_KEY"),
            ("openrouter", s.openrouter_base_url, s.openrouter_api_key, "OPENROUTER_API_KEY"),
            ("gemini", s.gemini_base_url, s.gemini_api_key, "GEMINI_API_KEY"),
            ("xai", s.xai_base_url, s.xai_api_key, "XAI_API_KEY"),
        ]
        for name, base, key, env in compat:
            assert base is not None
            add(
                name,
                base,
                "" if key else f"set {env}",
                lambda name=name, base=base, key=key: OpenAICompatProvider(name, base, _key(key)),
            )
        # Keyless local servers: configured by their URL alone.
        add(
            "ollama",
            s.ollama_base_url or "",
            "" if s.ollama_base_url else "set OLLAMA_BASE_URL",
            lambda: OpenAICompatProvider("ollama", s.ollama_base_url or "", None),
        )
        add(
            "openai-compat",
            s.openai_compat_base_url or "",
            "" if s.openai_compat_base_url else "set OPENAI_COMPAT_BASE_URL",
            lambda: OpenAICompatProvider(
                "openai-compat", s.openai_compat_base_url or "", _key(s.openai_compat_api_key)
            ),
        )
        return cls(providers, statuses)
