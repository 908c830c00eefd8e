"""The one event-stream reader under every chat provider: an httpx response in, JSON objects out.

Rules (providers.md §5, §8.2): check status and content type before reading events; skip comments,
pings, empty data and anything that is not a JSON object; stop at `[DONE]`; raise in-band errors;
keep a last event that lacks its blank line at EOF.
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncGenerator
from typing import Any

import httpx
from httpx_sse import ServerSentEvent
from httpx_sse._decoders import SSEDecoder, SSELineDecoder

from bot.llm.errors import Classifier, is_error_payload
from bot.llm.types import TransientError

log = logging.getLogger(__name__)

_BOM = "\ufeff"
_DONE = object()  # the `[DONE]` terminator


class JsonEvents:
    """Iterate `(event name, JSON object)` pairs of one streaming response ("message" if unnamed).

    Raises the classified ProviderError for a non-2xx status, a non-stream reply or an in-band
    error.
    After iteration, `done` tells whether a `data: [DONE]` ended the stream.
    """

    def __init__(self, response: httpx.Response, classify: Classifier) -> None:
        self._response = response
        self._classify = classify
        self.done = False

    def __aiter__(self) -> AsyncGenerator[tuple[str, dict[str, Any]], None]:
        return self._events()

    async def _events(self) -> AsyncGenerator[tuple[str, dict[str, Any]], None]:
        await self._check_response()
        # Decoding and reading share one generator: each async-generator layer costs about a
        # microsecond per event (bench/parse.py).
        # httpx_sse's line splitter, not httpx's aiter_lines(): the latter also splits on U+2028,
        # U+0085 and friends, which may sit raw inside a JSON string.
        self._response.encoding = "utf-8"  # the SSE spec fixes the encoding
        lines = SSELineDecoder()
        decoder = SSEDecoder()
        first = True
        async for text in self._response.aiter_text():
            if first and text:
                text = text.removeprefix(_BOM)
                first = False
            for line in lines.decode(text):
                sse = decoder.decode(line)
                if sse is None:
                    continue
                obj = self._read(sse)
                if obj is _DONE:
                    return
                if obj is not None:
                    yield sse.event, obj
        # Flush: a last event without its trailing blank line (`data: [DONE]\n` + EOF) still counts.
        for line in [*lines.flush(), ""]:
            sse = decoder.decode(line)
            if sse is not None and (obj := self._read(sse)) is not None and obj is not _DONE:
                yield sse.event, obj

    def _read(self, sse: ServerSentEvent) -> Any:
        """One event as a JSON object, None to skip it, or _DONE; raises in-band errors."""
        if sse.event == "ping":
            return None
        data = sse.data
        if not data or data.isspace():
            if sse.event == "error":
                raise self._classify(None, None, self._response.headers)
            return None
        if data.startswith("[DONE]"):
            self.done = True
            return _DONE
        try:
            obj = json.loads(data)
        except ValueError:
            if sse.event == "error":
                raise self._classify(None, {"error": data}, self._response.headers) from None
            log.debug("sse: skipped a non-JSON event (%d chars)", len(data))
            return None
        if sse.event == "error" or (isinstance(obj, dict) and is_error_payload(obj)):
            raise self._classify(None, obj, self._response.headers)
        if not isinstance(obj, dict):
            log.debug("sse: skipped a non-object JSON event (%s)", type(obj).__name__)
            return None
        return obj

    async def _check_response(self) -> None:
        response = self._response
        content_type = response.headers.get("content-type", "")
        if response.is_success and "text/event-stream" in content_type:
            return
        body = await response.aread()
        payload = _json_or_none(body)
        if not response.is_success:
            raise self._classify(response.status_code, payload, response.headers)
        if isinstance(payload, dict) and is_error_payload(payload):
            raise self._classify(response.status_code, payload, response.headers)
        raise TransientError(
            "the provider answered without an event stream", status=response.status_code
        )


def _json_or_none(body: bytes) -> object:
    try:
        return json.loads(body)
    except ValueError:
        return None
