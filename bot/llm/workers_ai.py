"""Cloudflare Workers AI native streaming, direct or through AI Gateway (providers.md §1)."""

from __future__ import annotations

from typing import Any

import httpx

from bot.llm.base import SSEChatProvider, StreamState
from bot.llm.openai_compat import add_sampling, read_openai_chunk, wire_messages
from bot.llm.tools import openai_tools
from bot.llm.types import ChatCall


class WorkersAIProvider(SSEChatProvider):
    """POST …/ai/run/{model} (or the gateway's …/workers-ai/{model}) with `stream: true`.

    Native streams carry no finish reason: `[DONE]` is the only clean end (→ STOP, or LENGTH when
    completion tokens reach max_tokens); EOF without it raises StreamTruncated.
    """

    def __init__(
        self,
        account_id: str,
        api_token: str | None,
        *,
        api_base_url: str = "https://api.cloudflare.com/client/v4",
        gateway_id: str | None = None,
        gateway_base_url: str = "https://gateway.ai.cloudflare.com/v1",
        gateway_token: str | None = None,
        client: httpx.AsyncClient | None = None,
    ) -> None:
        super().__init__("workers-ai", client, secrets=(api_token, gateway_token))
        if gateway_id:
            self._prefix = f"{gateway_base_url.rstrip('/')}/{account_id}/{gateway_id}/workers-ai/"
        else:
            self._prefix = f"{api_base_url.rstrip('/')}/accounts/{account_id}/ai/run/"
        self._headers = {"accept": "text/event-stream"}
        if api_token:
            self._headers["authorization"] = f"Bearer {api_token}"
        if gateway_id and gateway_token:
            self._headers["cf-aig-authorization"] = f"Bearer {gateway_token}"

    def _request(self, call: ChatCall) -> tuple[str, dict[str, str], dict[str, Any]]:
        # Always send max_tokens: many models default to 256 and cut answers short (§1.3).
        body: dict[str, Any] = {
            **call.extra,
            "messages": wire_messages(call.messages),
            "stream": True,
            "max_tokens": call.max_tokens,
        }
        add_sampling(body, call)
        if call.tools:
            body["tools"] = openai_tools(call.tools)
        return self._prefix + call.model_id.lstrip("/"), self._headers, body

    def _on_event(self, event: str, obj: dict[str, Any], state: StreamState) -> str:
        return read_openai_chunk(obj, state)
