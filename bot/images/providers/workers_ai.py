"""Cloudflare Workers AI text-to-image (`POST /accounts/{id}/ai/run/{model}`).

SDXL (base and Lightning) answers raw `image/png`; FLUX.1 schnell and FLUX.2 answer JSON
`{"result": {"image": base64}}`. Decide by the response's Content-Type, then check the magic bytes
whatever it claimed. FLUX.2 models take their input as multipart/form-data, even a prompt alone
(providers.md §1.6); the others take JSON.
"""

from __future__ import annotations

import httpx

from bot.images.providers.base import HttpImageProvider, ImageCall, ImageResult
from bot.llm.errors import is_error_payload


class WorkersAIImages(HttpImageProvider):
    def __init__(
        self,
        account_id: str,
        api_token: str,
        *,
        api_base_url: str,
        client: httpx.AsyncClient | None = None,
    ) -> None:
        super().__init__("workers-ai", client, [api_token])
        self._base = f"{api_base_url.rstrip('/')}/accounts/{account_id}/ai/run/"
        self._headers = {"Authorization": f"Bearer {api_token}"}

    async def generate(self, call: ImageCall) -> ImageResult:
        body: dict[str, object] = {"prompt": call.prompt, **call.params}
        if "/flux-2" in call.model_id:
            # FLUX.2: a form; klein runs a fixed 4 steps, so `steps` goes only when asked.
            body["width"], body["height"] = call.width, call.height
            if call.steps is not None:
                body["steps"] = call.steps
            if call.seed is not None:
                body["seed"] = call.seed
            form = {name: str(value) for name, value in body.items()}
            response = await self._send(
                "POST", self._base + call.model_id, headers=self._headers, form=form
            )
            return self._read(response)
        if "flux" in call.model_id:
            # FLUX.1 schnell: fixed size, `steps` (max 8); later schemas refuse anything else.
            if call.steps is not None:
                body["steps"] = call.steps
        else:
            body["width"], body["height"] = call.width, call.height
            if call.steps is not None:
                body["num_steps"] = call.steps
            if call.negative:
                body["negative_prompt"] = call.negative
            if call.seed is not None:
                body["seed"] = call.seed
        response = await self._send("POST", self._base + call.model_id, headers=self._headers,
                                    json=body)  # fmt: skip
        return self._read(response)

    def _read(self, response: httpx.Response) -> ImageResult:
        content_type = response.headers.get("content-type", "").split(";")[0].strip().lower()
        if content_type.startswith("image/"):
            return self.image(response.content)
        payload = self.read_json(response)
        if is_error_payload(payload):
            raise self.error(None, payload, response.headers)
        result = payload.get("result")
        image = result.get("image") if isinstance(result, dict) else payload.get("image")
        return self.decode(image)
