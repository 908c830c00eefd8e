"""Google Imagen (`POST /models/{model}:predict`): `predictions[].bytesBase64Encoded`.

No prediction back means the safety filter dropped the image: a refusal, not a fault.
"""

from __future__ import annotations

import httpx

from bot.images.providers.base import HttpImageProvider, ImageCall, ImageResult

# Imagen takes aspect ratios; 3:2 is refused, so landscape/portrait are 4:3 and 3:4.
_ASPECT = {"1024x1024": "1:1", "1536x1024": "4:3", "1024x1536": "3:4"}


class ImagenImages(HttpImageProvider):
    def __init__(
        self, api_key: str, *, base_url: str, client: httpx.AsyncClient | None = None
    ) -> None:
        super().__init__("google", client, [api_key])
        self._base = base_url.rstrip("/")
        self._headers = {"x-goog-api-key": api_key}

    async def generate(self, call: ImageCall) -> ImageResult:
        parameters: dict[str, object] = {
            "sampleCount": 1,
            "aspectRatio": _ASPECT.get(call.size, "1:1"),
            **call.params,
        }
        if call.seed is not None:
            parameters["seed"] = call.seed
        if call.negative:
            parameters["negativePrompt"] = call.negative
        body = {"instances": [{"prompt": call.prompt}], "parameters": parameters}
        url = f"{self._base}/models/{call.model_id}:predict"
        response = await self._send("POST", url, headers=self._headers, json=body)
        predictions = self.read_json(response).get("predictions")
        first = predictions[0] if isinstance(predictions, list) and predictions else None
        if not isinstance(first, dict) or not first.get("bytesBase64Encoded"):
            reason = first.get("raiFilteredReason") if isinstance(first, dict) else None
            raise self.refused(str(reason or "the provider's safety filter withheld the image"))
        return self.decode(first["bytesBase64Encoded"])
