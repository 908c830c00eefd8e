"""Replicate predictions: create with `Prefer: wait`, poll `urls.get` if not done, download at once.

Once the create call has returned, the prediction exists and will be billed: from then on every
loss (a dropped poll, a timeout, a failed download) is an UnknownOutcome, never a retry.
Output URLs expire after about an hour, so the image is fetched right away, without our token
(the delivery host is not the API host).
"""

from __future__ import annotations

import contextlib
from typing import Any

import httpx

from bot.clock import SYSTEM_CLOCK, Clock
from bot.images.providers.base import (
    ContentRefused,
    HttpImageProvider,
    ImageCall,
    ImageResult,
    UnknownOutcome,
)
from bot.llm.types import ProviderError, TransientError

_ASPECT = {"1024x1024": "1:1", "1536x1024": "3:2", "1024x1536": "2:3"}
_DONE_BAD = ("failed", "canceled", "aborted")


class PredictionFailed(TransientError):
    """Replicate says the prediction failed, was canceled or aborted: it produced nothing."""


class ReplicateImages(HttpImageProvider):
    def __init__(
        self,
        api_token: str,
        *,
        base_url: str,
        client: httpx.AsyncClient | None = None,
        clock: Clock = SYSTEM_CLOCK,
        wait: int = 60,
        poll_interval: float = 1.0,
        deadline: float = 240.0,
    ) -> None:
        super().__init__("replicate", client, [api_token])
        self._base = base_url.rstrip("/")
        self._auth = {"Authorization": f"Bearer {api_token}"}
        self._clock = clock
        self._wait = wait
        self._poll_interval = poll_interval
        self._deadline = deadline

    async def generate(self, call: ImageCall) -> ImageResult:
        model_input: dict[str, object] = {
            "prompt": call.prompt,
            "aspect_ratio": _ASPECT.get(call.size, "1:1"),
            "output_format": "png",
            **call.params,
        }
        if call.seed is not None:
            model_input["seed"] = call.seed
        if call.steps is not None:
            model_input["num_inference_steps"] = call.steps
        url = f"{self._base}/models/{call.model_id}/predictions"
        headers = {**self._auth, "Prefer": f"wait={self._wait}"}
        # The sync wait holds the response for up to `wait` seconds: read must outlast it.
        timeout = httpx.Timeout(connect=5, read=self._wait + 5, write=10, pool=5)
        response = await self._send(
            "POST", url, headers=headers, json={"input": model_input}, http_timeout=timeout
        )
        try:
            prediction = await self._finish(self.read_json(response))
            return await self._download(prediction.get("output"))
        except (ContentRefused, PredictionFailed, UnknownOutcome):
            raise
        except ProviderError as exc:
            raise UnknownOutcome(
                f"the prediction was created but its result was lost ({exc.message})",
                provider=self.name,
            ) from exc

    async def _finish(self, prediction: dict[str, Any]) -> dict[str, Any]:
        """Poll until the prediction ends; raise for a failed one."""
        started = self._clock.now()
        while True:
            status = prediction.get("status")
            if status == "succeeded":
                return prediction
            if status in _DONE_BAD:
                detail = str(prediction.get("error") or f"the prediction {status}")
                error = self.error(422, {"error": {"message": detail}})
                if isinstance(error, ContentRefused):
                    raise error
                raise PredictionFailed(error.message, provider=self.name)
            if self._clock.now() - started >= self._deadline:
                await self._cancel(prediction)
                raise UnknownOutcome(
                    "the prediction did not finish in time; it was asked to cancel",
                    provider=self.name,
                )
            await self._clock.sleep(self._poll_interval)
            response = await self._send(
                "GET", self._poll_url(prediction), headers=self._auth, accepted=True
            )
            prediction = self.read_json(response)

    def _poll_url(self, prediction: dict[str, Any]) -> str:
        urls = prediction.get("urls")
        get = urls.get("get") if isinstance(urls, dict) else None
        if isinstance(get, str) and get:
            return get
        return f"{self._base}/predictions/{prediction.get('id', '')}"

    async def _cancel(self, prediction: dict[str, Any]) -> None:
        urls = prediction.get("urls")
        cancel = urls.get("cancel") if isinstance(urls, dict) else None
        if not isinstance(cancel, str):
            return
        with contextlib.suppress(ProviderError):  # best effort: the outcome is unknown anyway
            await self._send("POST", cancel, headers=self._auth, accepted=True)

    async def _download(self, output: object) -> ImageResult:
        if isinstance(output, list):
            output = output[0] if output else None
        if not isinstance(output, str) or not output:
            raise TransientError("the prediction succeeded without an output", provider=self.name)
        if output.startswith("data:"):
            return self.decode(output)
        # The token goes only to the API itself, never to the delivery CDN.
        headers = self._auth if output.startswith(self._base + "/") else {}
        response = await self._send("GET", output, headers=headers, accepted=True)
        return self.image(response.content)
