"""Together images (`POST /images/generations`): `response_format: "base64"` (not `b64_json`)."""

from __future__ import annotations

import httpx

from bot.images.providers.base import HttpImageProvider, ImageCall, ImageResult


class TogetherImages(HttpImageProvider):
    def __init__(
        self, api_key: str, *, base_url: str, client: httpx.AsyncClient | None = None
    ) -> None:
        super().__init__("together", client, [api_key])
        self._url = base_url.rstrip("/") + "/images/generations"
        # Together's image CDN refuses an empty User-Agent; httpx sends its own, keep it explicit.
        self._headers = {"Authorization": f"Bearer {api_key}", "User-Agent": "parley-bot"}

    async def generate(self, call: ImageCall) -> ImageResult:
        body: dict[str, object] = {
            "model": call.model_id,
            "prompt": call.prompt,
            "width": call.width,
            "height": call.height,
            "n": 1,
            "response_format": "base64",
            "output_format": "png",
            **call.params,
        }
        if call.steps is not None:
            body["steps"] = call.steps
        if call.seed is not None:
            body["seed"] = call.seed
        if call.negative:
            body["negative_prompt"] = call.negative
        response = await self._send("POST", self._url, headers=self._headers, json=body)
        data = self.read_json(response).get("data")
        first = data[0] if isinstance(data, list) and data else {}
        return self.decode(first.get("b64_json") if isinstance(first, dict) else None)
