"""What every image provider shares: the call and result types, errors, one HTTP send, sniffing.

Errors reuse the chat taxonomy (bot/llm/types.py) and add two image cases:
`ContentRefused` (a RequestError: the prompt was refused; neutral for the breaker, and no fallback
since others would likely refuse too) and `UnknownOutcome` (a TransientError after the provider may
have accepted the work: it may be charged, so it is never retried or sent elsewhere).
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Protocol

import httpx

from bot.llm.base import _tls
from bot.llm.errors import classify_error, redact, transport_error
from bot.llm.types import ProviderError, RequestError, TransientError

IMAGE_TIMEOUT = httpx.Timeout(connect=5, read=120, write=10, pool=5)
"""Image calls answer in one piece and can take a while (Replicate's `Prefer: wait` is 60 s)."""

_POLICY = re.compile(
    r"content[ _-]?policy|moderation|safety|nsfw|blocked|prohibited|inappropriate", re.IGNORECASE
)
_POLICY_CODES = frozenset({"content_policy_violation", "moderation_blocked", "safety_violation"})


class ContentRefused(RequestError):
    """The provider refused the prompt (content policy). Shown to the user; not a provider fault."""


class UnknownOutcome(TransientError):
    """The provider may have accepted (and will bill) the work, but we lost the answer."""


@dataclass(frozen=True, slots=True)
class ImageCall:
    """One image from one provider's model."""

    model_id: str
    prompt: str
    size: str  # "1024x1024" | "1536x1024" | "1024x1536"
    negative: str | None = None
    seed: int | None = None
    steps: int | None = None
    params: Mapping[str, Any] = field(default_factory=dict)

    @property
    def width(self) -> int:
        return int(self.size.split("x")[0])

    @property
    def height(self) -> int:
        return int(self.size.split("x")[1])


@dataclass(frozen=True, slots=True)
class ImageResult:
    data: bytes
    mime: str  # from the bytes, not from what the provider claimed
    extension: str  # "png" | "jpg" | "webp"
    cost: Decimal | None = None
    """What the provider reported spending, when it says; None = the catalog's estimate stands."""


class ImageProvider(Protocol):
    name: str

    async def generate(self, call: ImageCall) -> ImageResult:
        """One image; raises ProviderError subclasses (ContentRefused, UnknownOutcome, ...)."""
        ...

    async def aclose(self) -> None: ...


def sniff(data: bytes) -> tuple[str, str] | None:
    """(mime, extension) from the magic bytes: PNG, JPEG or WEBP; None for anything else."""
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png", "png"
    if data.startswith(b"\xff\xd8\xff"):
        return "image/jpeg", "jpg"
    if len(data) >= 12 and data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp", "webp"
    return None


class HttpImageProvider:
    """One provider on one httpx client: sends, classifies failures, never echoes a secret."""

    def __init__(
        self,
        name: str,
        client: httpx.AsyncClient | None,
        secrets: Iterable[str | None],
        *,
        timeout: httpx.Timeout = IMAGE_TIMEOUT,
    ) -> None:
        self.name = name
        self._owns_client = client is None
        self._client = client or httpx.AsyncClient(timeout=timeout, verify=_tls())
        self._secrets = tuple(s for s in secrets if s)

    async def aclose(self) -> None:
        if self._owns_client:
            await self._client.aclose()

    async def _send(
        self,
        method: str,
        url: str,
        *,
        headers: Mapping[str, str],
        json: object = None,
        form: Mapping[str, str] | None = None,
        accepted: bool = False,
        http_timeout: httpx.Timeout | None = None,
    ) -> httpx.Response:
        """Send and read the whole reply (a JSON body, or `form` fields as multipart/form-data);
        raise the taxonomy's error for any failure.

        A reply lost after the request went out (read timeout, connection dropped) is an
        UnknownOutcome for a submission; `accepted` says the work already exists (a Replicate
        prediction), so even a failed connect leaves the outcome unknown.
        """
        extra: dict[str, Any] = {} if http_timeout is None else {"timeout": http_timeout}
        if form is not None:
            # multipart/form-data with plain fields (no file name): httpx sends `files` so.
            extra["files"] = {name: (None, value) for name, value in form.items()}
        try:
            response = await self._client.request(
                method, url, headers=dict(headers), json=json, **extra
            )
        except (httpx.ReadTimeout, httpx.ReadError, httpx.RemoteProtocolError) as exc:
            raise UnknownOutcome(
                "the provider stopped answering after taking the request; it may still bill it",
                provider=self.name,
            ) from exc
        except (httpx.RequestError, httpx.InvalidURL) as exc:
            if accepted:
                raise UnknownOutcome(
                    "lost contact with the provider while it was generating", provider=self.name
                ) from exc
            raise transport_error(exc, provider=self.name, streaming=False) from exc
        if response.status_code >= 300:
            raise self.error(response.status_code, _json_or_none(response), response.headers)
        return response

    def error(
        self, status: int | None, payload: object, headers: Mapping[str, str] | None = None
    ) -> ProviderError:
        """The taxonomy's error for a failure; content-policy refusals become ContentRefused."""
        error = classify_error(status, payload, headers, provider=self.name, secrets=self._secrets)
        if isinstance(error, RequestError) and (
            (error.code or "") in _POLICY_CODES or _POLICY.search(error.message)
        ):
            return ContentRefused(
                error.message, provider=self.name, status=error.status, code=error.code
            )
        return error

    def refused(self, message: str) -> ContentRefused:
        return ContentRefused(redact(message, self._secrets), provider=self.name)

    def image(self, data: bytes, *, cost: Decimal | None = None) -> ImageResult:
        """Name the bytes by their magic number; anything that is not an image is a failure."""
        kind = sniff(data)
        if kind is None:
            raise TransientError("the provider returned something that is not an image",
                                 provider=self.name)  # fmt: skip
        return ImageResult(data, kind[0], kind[1], cost)

    def decode(self, value: object) -> ImageResult:
        """An image from a base64 string (a `data:` URL prefix is tolerated)."""
        if not isinstance(value, str) or not value:
            raise TransientError("the provider's reply held no image", provider=self.name)
        if value.startswith("data:"):
            value = value.partition(",")[2]
        try:
            data = base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError):
            raise TransientError("the provider's image was not valid base64",
                                 provider=self.name) from None  # fmt: skip
        return self.image(data)

    def read_json(self, response: httpx.Response) -> dict[str, Any]:
        body = _json_or_none(response)
        if not isinstance(body, dict):
            raise TransientError("the provider's reply was not a JSON object", provider=self.name)
        return body


def _json_or_none(response: httpx.Response) -> object:
    try:
        return response.json()
    except ValueError:
        return None
