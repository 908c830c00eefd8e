"""Stream parsing: the normalizer (JsonEvents + each provider's event reader) against the floor of
httpx-sse's EventSource plus json.loads, on the same recorded streams through the same httpx client.

Target (issue 7): the normalizer costs at most 25% over that floor.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import httpx
from httpx_sse import EventSource

from bench.common import median, row, verdict
from bot.llm.anthropic import AnthropicProvider
from bot.llm.base import SSEChatProvider
from bot.llm.openai_compat import OpenAICompatProvider
from bot.llm.sse import JsonEvents
from bot.llm.types import ChatCall, Message, ProviderError
from bot.llm.workers_ai import WorkersAIProvider

TOKENS = 400
STREAMS = 150
RUNS = 7
CALL = ChatCall("m", [Message("user", "hi")], max_tokens=1024)


def _sse(obj: object, event: str | None = None) -> bytes:
    head = f"event: {event}\n" if event else ""
    return f"{head}data: {json.dumps(obj, separators=(',', ':'))}\n\n".encode()


def openai_stream() -> list[bytes]:
    base = {"id": "chatcmpl-x", "object": "chat.completion.chunk", "created": 1, "model": "m"}
    chunk = lambda delta, finish=None: _sse(  # noqa: E731
        {**base, "choices": [{"index": 0, "delta": delta, "finish_reason": finish}], "usage": None}
    )
    events = [chunk({"role": "assistant", "content": ""})]
    events += [chunk({"content": f" tok{i}"}) for i in range(TOKENS)]
    events += [chunk({}, "stop")]
    events += [
        _sse({**base, "choices": [], "usage": {"prompt_tokens": 9, "completion_tokens": 400}})
    ]
    return [*events, b"data: [DONE]\n\n"]


def workers_stream() -> list[bytes]:
    events = [_sse({"response": f" tok{i}", "p": "abcdef"}) for i in range(TOKENS)]
    events.append(_sse({"response": "", "usage": {"prompt_tokens": 9, "completion_tokens": 400}}))
    return [*events, b"data: [DONE]\n\n"]


def anthropic_stream() -> list[bytes]:
    message = {"id": "msg", "type": "message", "usage": {"input_tokens": 9, "output_tokens": 1}}
    events = [
        _sse({"type": "message_start", "message": message}, "message_start"),
        _sse({"type": "content_block_start", "index": 0}, "content_block_start"),
    ]
    events += [
        _sse(
            {
                "type": "content_block_delta",
                "index": 0,
                "delta": {"type": "text_delta", "text": f" tok{i}"},
            },
            "content_block_delta",
        )
        for i in range(TOKENS)
    ]
    events += [
        _sse({"type": "content_block_stop", "index": 0}, "content_block_stop"),
        _sse(
            {
                "type": "message_delta",
                "delta": {"stop_reason": "end_turn"},
                "usage": {"output_tokens": 400},
            },
            "message_delta",
        ),
        _sse({"type": "message_stop"}, "message_stop"),
    ]
    return events


class _Chunks(httpx.AsyncByteStream):
    def __init__(self, chunks: list[bytes]) -> None:
        self._chunks = chunks

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for chunk in self._chunks:
            yield chunk


def _client(chunks: list[bytes]) -> httpx.AsyncClient:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(
            200, headers={"content-type": "text/event-stream"}, stream=_Chunks(chunks)
        )

    return httpx.AsyncClient(transport=httpx.MockTransport(handler))


async def _floor(client: httpx.AsyncClient) -> int:
    count = 0
    async with client.stream("POST", "http://bench/x", json={}) as response:
        async for sse in EventSource(response).aiter_sse():
            if sse.data.startswith("[DONE]"):
                break
            json.loads(sse.data)
            count += 1
    return count


async def _events_only(client: httpx.AsyncClient) -> int:
    count = 0
    async with client.stream("POST", "http://bench/x", json={}) as response:
        async for _ in JsonEvents(response, _never):
            count += 1
    return count


def _never(*_: object) -> ProviderError:
    raise AssertionError("no errors in these streams")


async def _normalized(provider: SSEChatProvider) -> int:
    count = 0
    async for _ in provider.stream(CALL):
        count += 1
    return count


async def _time(fn: Callable[[Any], Awaitable[int]], arg: Any, streams: int) -> float:
    start = time.process_time()  # CPU of this process: steadier than wall time on a busy machine
    for _ in range(streams):
        await fn(arg)
    return time.process_time() - start


async def main() -> bool:
    print(
        "Stream parsing (normalizer vs httpx-sse + json.loads, same client, in-process transport)"
    )
    cases: list[tuple[str, list[bytes], Callable[[httpx.AsyncClient], SSEChatProvider]]] = [
        (
            "openai-compatible",
            openai_stream(),
            lambda c: OpenAICompatProvider("openai", "http://bench", "k", client=c),
        ),
        (
            "workers-ai native",
            workers_stream(),
            lambda c: WorkersAIProvider("a", "k", api_base_url="http://bench", client=c),
        ),
        (
            "anthropic",
            anthropic_stream(),
            lambda c: AnthropicProvider("k", base_url="http://bench", client=c),
        ),
    ]
    ok = True
    for name, chunks, make in cases:
        client = _client(chunks)
        provider = make(client)
        events = len(chunks)
        ratios, full_ratios, floor_rates, norm_rates, full_rates = [], [], [], [], []
        await _time(_floor, client, 10)  # warm up
        await _time(_events_only, client, 10)
        await _time(_normalized, provider, 10)
        for _ in range(RUNS):
            floor = await _time(_floor, client, STREAMS)
            norm = await _time(_events_only, client, STREAMS)
            full = await _time(_normalized, provider, STREAMS)
            ratios.append(norm / floor)
            full_ratios.append(full / floor)
            floor_rates.append(events * STREAMS / floor)
            norm_rates.append(events * STREAMS / norm)
            full_rates.append(events * STREAMS / full)
        await client.aclose()
        overhead = median(ratios) - 1
        ok &= overhead <= 0.25
        row(f"{name}: floor events/s (median of {RUNS})", f"{median(floor_rates):,.0f}")
        row(f"{name}: normalizer (JsonEvents) events/s", f"{median(norm_rates):,.0f}")
        row(
            f"{name}: normalizer overhead over floor",
            f"{overhead:+.1%}",
            "<= +25%",
            verdict(overhead <= 0.25),
        )
        row(f"{name}: full provider path (ChatChunks) events/s", f"{median(full_rates):,.0f}")
        row(
            f"{name}: full provider path over floor",
            f"{median(full_ratios) - 1:+.1%}",
            "(no target)",
        )
    return ok


if __name__ == "__main__":
    asyncio.run(main())
