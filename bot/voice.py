"""Voice messages transcribed: Workers AI Whisper (direct or through AI Gateway) or OpenAI's
transcription endpoint, priced per audio minute from the catalog (bot/catalog/voice.toml).

`Transcriber.transcribe` takes the recording's bytes and returns its text and length in
seconds, or raises `TranscriptionFailed` with a line safe to show (never a key, never a URL).
The wire formats (providers.md; Cloudflare's `Ai_Cf_Openai_Whisper_Large_V3_Turbo_Input`):
- Workers AI `@cf/openai/whisper-large-v3-turbo`: POST …/ai/run/<model> with JSON
  `{"audio": <base64>, "task": "transcribe", "vad_filter": true}`; the envelope's `result` holds
  `text` and `transcription_info.duration` (seconds).
- OpenAI `gpt-4o-mini-transcribe` / `whisper-1`: POST /v1/audio/transcriptions, multipart
  (`file`, `model`, `response_format=json`); `{"text": …, "usage": {"seconds": …}}` (whisper-1)
  or token usage (the 4o models: the length is then measured by the caller's estimate).
"""

from __future__ import annotations

import base64
import logging
import tomllib
from dataclasses import dataclass
from decimal import Decimal
from importlib import resources
from typing import Any

import httpx

from bot.config import ConfigurationError

log = logging.getLogger("parley.voice")

TIMEOUT_SECONDS = 120.0
FAILED = "{name}: I couldn't transcribe it{why}; please try again or type your question."


class TranscriptionFailed(Exception):
    """The provider could not transcribe; the message is for the user."""


@dataclass(frozen=True, slots=True)
class VoiceModel:
    name: str
    provider: str
    model_id: str
    price_per_minute: Decimal

    def cost(self, seconds: float) -> Decimal:
        return (self.price_per_minute * Decimal(str(round(seconds, 3))) / 60).quantize(
            Decimal("0.000000001")
        )


def voice_models() -> dict[str, VoiceModel]:
    """The catalog's transcription models, by name."""
    raw = tomllib.loads(resources.files("bot.catalog").joinpath("voice.toml").read_text())
    return {
        m["name"]: VoiceModel(
            m["name"], m["provider"], m["model_id"], Decimal(m["price"]["per_minute"])
        )
        for m in raw["models"]
    }


@dataclass(frozen=True, slots=True)
class Heard:
    text: str
    seconds: float


class Transcriber:
    def __init__(
        self,
        model: VoiceModel,
        url: str,
        headers: dict[str, str],
        *,
        client: httpx.AsyncClient | None = None,
    ) -> None:
        self.model = model
        self._url = url
        self._headers = headers
        self._client = client or httpx.AsyncClient(timeout=TIMEOUT_SECONDS)

    @classmethod
    def workers_ai(
        cls,
        model: VoiceModel,
        account_id: str,
        api_token: str | None,
        *,
        api_base_url: str = "https://api.cloudflare.com/client/v4",
        gateway_id: str | None = None,
        gateway_base_url: str = "https://gateway.ai.cloudflare.com/v1",
        gateway_token: str | None = None,
    ) -> Transcriber:
        if gateway_id:
            url = f"{gateway_base_url.rstrip('/')}/{account_id}/{gateway_id}/workers-ai/"
        else:
            url = f"{api_base_url.rstrip('/')}/accounts/{account_id}/ai/run/"
        headers = {"authorization": f"Bearer {api_token}"} if api_token else {}
        if gateway_id and gateway_token:
            headers["cf-aig-authorization"] = f"Bearer {gateway_token}"
        return cls(model, url + model.model_id.lstrip("/"), headers)

    @classmethod
    def openai(cls, model: VoiceModel, api_key: str, base_url: str) -> Transcriber:
        url = f"{base_url.rstrip('/')}/audio/transcriptions"
        return cls(model, url, {"authorization": f"Bearer {api_key}"})

    async def aclose(self) -> None:
        await self._client.aclose()

    async def transcribe(self, name: str, data: bytes, content_type: str, seconds: float) -> Heard:
        """The recording's words; `seconds` is the platform's length for it (0: unknown)."""
        try:
            if self.model.provider == "openai":
                files = {"file": (name, data, content_type or "application/octet-stream")}
                form = {"model": self.model.model_id, "response_format": "json"}
                response = await self._client.post(
                    self._url, headers=self._headers, files=files, data=form
                )
            else:
                body = {"audio": base64.b64encode(data).decode(), "task": "transcribe",
                        "vad_filter": True}  # fmt: skip
                response = await self._client.post(self._url, headers=self._headers, json=body)
        except httpx.HTTPError as exc:
            log.warning(
                "transcription failed model=%s error=%s", self.model.name, type(exc).__name__
            )
            raise TranscriptionFailed(FAILED.format(name=name, why=" (no answer)")) from None
        if response.status_code != 200:
            log.warning(
                "transcription refused model=%s status=%s", self.model.name, response.status_code
            )
            why = f" (the speech service said {response.status_code})"
            raise TranscriptionFailed(FAILED.format(name=name, why=why))
        try:
            payload: Any = response.json()
            result = payload["result"] if self.model.provider != "openai" else payload
            text = str(result["text"]).strip()
            info = result.get("transcription_info") or result.get("usage") or {}
            heard = float(info.get("duration") or info.get("seconds") or 0) or seconds
        except (ValueError, KeyError, TypeError):
            raise TranscriptionFailed(
                FAILED.format(name=name, why=" (an unreadable answer)")
            ) from None
        return Heard(text, heard)


def build_transcriber(settings: Any) -> Transcriber | None:
    """VOICE_MODEL's transcriber (default: Workers AI's Whisper turbo when Cloudflare is set up,
    else OpenAI's gpt-4o-mini-transcribe when its key is); None when it cannot run ("off")."""
    models = voice_models()
    choice = settings.voice_model
    if choice == "off":
        return None
    cloudflare = bool(settings.cloudflare_account_id and settings.cloudflare_api_token)
    openai = settings.openai_api_key is not None
    if choice is None:
        choice = "whisper-large-v3-turbo" if cloudflare else "gpt-4o-mini-transcribe"
    model = models.get(choice)
    if model is None:
        known = ", ".join(models)
        raise ConfigurationError(f"VOICE_MODEL: unknown model {choice!r} (known: {known}, off)")
    if model.provider == "workers-ai" and cloudflare:
        return Transcriber.workers_ai(
            model,
            settings.cloudflare_account_id,
            settings.cloudflare_api_token.get_secret_value(),
            api_base_url=settings.cloudflare_api_base_url,
            gateway_id=settings.cloudflare_ai_gateway,
            gateway_base_url=settings.cloudflare_ai_gateway_base_url,
            gateway_token=(
                settings.cloudflare_ai_gateway_token.get_secret_value()
                if settings.cloudflare_ai_gateway_token
                else None
            ),
        )
    if model.provider == "openai" and openai:
        key = settings.openai_api_key.get_secret_value()
        return Transcriber.openai(model, key, settings.openai_base_url)
    return None
