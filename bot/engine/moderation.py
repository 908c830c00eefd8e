"""Optional moderation of a user's message before any chat provider sees it.

MODERATION_MODEL picks the checker: `openai:<model>` posts to `{OPENAI_BASE_URL}/moderations`;
`workers-ai:<model>` (Llama Guard) runs on Workers AI's native endpoint and answers "safe" or
"unsafe\\n<categories>". A checker that fails says so (ModerationUnavailable); the engine decides,
by MODERATION_FAIL_CLOSED, whether that lets the message through.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Protocol

import httpx

from bot.config import ConfigurationError, Settings

log = logging.getLogger("parley.moderation")

_TIMEOUT = httpx.Timeout(10.0, connect=5.0)


@dataclass(frozen=True, slots=True)
class Verdict:
    flagged: bool
    categories: tuple[str, ...] = ()


class ModerationUnavailable(Exception):
    """The moderation call failed (network, status, shape); the text is safe to log."""


class Moderator(Protocol):
    name: str

    async def check(self, text: str) -> Verdict: ...

    async def aclose(self) -> None: ...


class OpenAIModerator:
    def __init__(self, base_url: str, api_key: str, model: str) -> None:
        self.name = f"openai:{model}"
        self._model = model
        self._client = httpx.AsyncClient(
            base_url=base_url.rstrip("/") + "/",
            headers={"Authorization": f"Bearer {api_key}"},
            timeout=_TIMEOUT,
        )

    async def check(self, text: str) -> Verdict:
        body = await _post(self._client, "moderations", {"model": self._model, "input": text})
        try:
            result = body["results"][0]
            flagged = bool(result["flagged"])
            categories = tuple(sorted(k for k, v in result.get("categories", {}).items() if v))
        except (KeyError, IndexError, TypeError, AttributeError):
            raise ModerationUnavailable("unexpected moderation response shape") from None
        return Verdict(flagged, categories)

    async def aclose(self) -> None:
        await self._client.aclose()


class LlamaGuardModerator:
    """Llama Guard on Workers AI's native run endpoint."""

    def __init__(self, api_base: str, account_id: str, api_token: str, model: str) -> None:
        self.name = f"workers-ai:{model}"
        self._path = f"accounts/{account_id}/ai/run/{model}"
        self._client = httpx.AsyncClient(
            base_url=api_base.rstrip("/") + "/",
            headers={"Authorization": f"Bearer {api_token}"},
            timeout=_TIMEOUT,
        )

    async def check(self, text: str) -> Verdict:
        body = await _post(
            self._client,
            self._path,
            {"messages": [{"role": "user", "content": text}], "max_tokens": 32},
        )
        result = body.get("result") if isinstance(body, dict) else None
        response = result.get("response") if isinstance(result, dict) else None
        return parse_llama_guard(response)

    async def aclose(self) -> None:
        await self._client.aclose()


def parse_llama_guard(response: object) -> Verdict:
    """Llama Guard's answer: "safe", "unsafe\\nS1,S10", or the JSON form {safe, categories}."""
    if isinstance(response, dict) and isinstance(response.get("safe"), bool):
        categories = response.get("categories") or []
        return Verdict(not response["safe"], tuple(str(c) for c in categories))
    if not isinstance(response, str):
        raise ModerationUnavailable("unexpected Llama Guard response shape")
    lines = [line.strip() for line in response.strip().splitlines() if line.strip()]
    if lines and lines[0].lower() == "safe":
        return Verdict(False)
    if lines and lines[0].lower() == "unsafe":
        codes = ",".join(lines[1:]).replace(" ", "")
        return Verdict(True, tuple(c for c in codes.split(",") if c))
    raise ModerationUnavailable("Llama Guard answered neither safe nor unsafe")


async def _post(client: httpx.AsyncClient, path: str, payload: dict[str, Any]) -> Any:
    try:
        response = await client.post(path, json=payload)
    except httpx.HTTPError as exc:
        raise ModerationUnavailable(f"moderation request failed: {type(exc).__name__}") from None
    if response.status_code != 200:
        raise ModerationUnavailable(f"moderation answered HTTP {response.status_code}")
    try:
        return response.json()
    except ValueError:
        raise ModerationUnavailable("moderation answered with invalid JSON") from None


def build_moderator(settings: Settings) -> Moderator | None:
    """From MODERATION_MODEL and the provider's credentials; None when moderation is off."""
    spec = settings.moderation_model
    if not spec:
        return None
    provider, _, model = spec.partition(":")
    if provider == "openai":
        if settings.openai_api_key is None:
            raise ConfigurationError("MODERATION_MODEL: openai moderation needs OPENAI_API_KEY")
        key = settings.openai_api_key.get_secret_value()
        return OpenAIModerator(settings.openai_base_url, key, model)
    if settings.cloudflare_api_token is None or not settings.cloudflare_account_id:
        raise ConfigurationError(
            "MODERATION_MODEL: Workers AI moderation needs CLOUDFLARE_ACCOUNT_ID and"
            " CLOUDFLARE_API_TOKEN"
        )
    return LlamaGuardModerator(
        settings.cloudflare_api_base_url,
        settings.cloudflare_account_id,
        settings.cloudflare_api_token.get_secret_value(),
        model,
    )
