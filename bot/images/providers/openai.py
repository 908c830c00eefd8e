"""OpenAI images (`POST /images/generations`): GPT image models answer base64 (`b64_json`)."""

from __future__ import annotations

import httpx

from bot.images.providers.base import HttpImageProvider, ImageCall, ImageResult


class OpenAIImages(HttpImageProvider):
    def __init__(
        self, api_key: str, *, base_url: str, client: httpx.AsyncClient | None = None
    ) -> None:
        super().__init__("openai", client, [api_key])
        self._url = base_url.rstrip("/") + "/images/generations"
        self._headers = {"Authorization": f"Bearer {api_key}"}

    async def generate(self, call: ImageCall) -> ImageResult:
        body: dict[str, object] = {
            "model": call.model_id,
            "prompt": call.prompt,
            "n": 1,
            "size": call.size,
            "output_format": "png",
            **call.params,
        }
        response = await self._send("POST", self._url, headers=self._headers, json=body)
        data = self.read_json(response).get("data")
        first = data[0] if isinstance(data, list) and data else {}
        return self.decode(first.get("b64_json") if isinstance(first, dict) else None)
