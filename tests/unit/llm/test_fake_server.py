"""The fake server itself: strict like the real APIs, recorded, scriptable, and really split."""

from __future__ import annotations

import asyncio
import json
import sys
import time

import httpx

from tests.fakes.llm_server import (
    Call,
    LLMFake,
    ReplyScript,
    openai_error,
    openai_stream,
    workers_stream,
)

OPENAI_BODY = {
    "model": "m",
    "messages": [{"role": "user", "content": "hi"}],
    "stream": True,
    "stream_options": {"include_usage": True},
}


def _openai_auth(fake: LLMFake) -> dict[str, str]:
    return {"Authorization": f"Bearer {fake.openai_key}"}


async def test_every_call_is_recorded_with_lowercased_headers_and_parsed_body(
    llm_fake: LLMFake,
) -> None:
    async with httpx.AsyncClient() as client:
        before = time.monotonic()
        await client.post(
            f"{llm_fake.openai_base}/chat/completions",
            json=OPENAI_BODY,
            headers={**_openai_auth(llm_fake), "X-Custom": "Yes"},
        )
        await client.post(f"{llm_fake.openai_base}/chat/completions", content=b"not json")
    first, second = llm_fake.calls
    assert first.family == "openai"
    assert first.method == "POST"
    assert first.path == "/openai/v1/chat/completions"
    assert first.headers["x-custom"] == "Yes"
    assert first.body == OPENAI_BODY
    assert before <= first.at <= second.at
    assert second.body is None


async def test_bad_credentials_get_each_providers_own_401_and_keep_the_queue(
    llm_fake: LLMFake,
) -> None:
    llm_fake.queue("openai", openai_stream(["kept"]))
    llm_fake.gateway_token = "gw"
    async with httpx.AsyncClient() as client:
        openai = await client.post(f"{llm_fake.openai_base}/chat/completions", json=OPENAI_BODY)
        workers = await client.post(
            f"{llm_fake.cloudflare_api_base}/accounts/a/ai/run/@cf/x",
            json={"messages": [{"role": "user", "content": "x"}], "max_tokens": 5},
            headers={"Authorization": "Bearer wrong"},
        )
        gateway = await client.post(
            f"{llm_fake.gateway_base}/a/g/workers-ai/@cf/x",
            json={"messages": [{"role": "user", "content": "x"}], "max_tokens": 5},
            headers={"Authorization": f"Bearer {llm_fake.cloudflare_token}"},
        )
        anthropic = await client.post(
            f"{llm_fake.anthropic_base}/v1/messages",
            json={"model": "c", "max_tokens": 5, "messages": [{"role": "user", "content": "x"}]},
            headers={"x-api-key": "wrong", "anthropic-version": "2023-06-01"},
        )
    assert openai.status_code == 401
    assert openai.json()["error"]["type"] == "invalid_request_error"
    assert workers.status_code == 401
    assert workers.json()["errors"][0]["code"] == 10000
    assert gateway.status_code == 401
    assert gateway.json()["success"] is False
    assert anthropic.status_code == 401
    assert anthropic.json()["error"]["type"] == "authentication_error"
    assert llm_fake.pending("openai") == 1  # a rejected request consumed no script


async def test_bodies_are_validated_like_the_real_apis(llm_fake: LLMFake) -> None:
    async with httpx.AsyncClient() as client:
        no_usage = await client.post(
            f"{llm_fake.openai_base}/chat/completions",
            json={**OPENAI_BODY, "stream_options": None},
            headers=_openai_auth(llm_fake),
        )
        no_max_tokens = await client.post(
            f"{llm_fake.cloudflare_api_base}/accounts/a/ai/run/@cf/x",
            json={"messages": [{"role": "user", "content": "x"}], "stream": True},
            headers={"Authorization": f"Bearer {llm_fake.cloudflare_token}"},
        )
        system_role = await client.post(
            f"{llm_fake.anthropic_base}/v1/messages",
            json={
                "model": "c",
                "max_tokens": 5,
                "messages": [
                    {"role": "system", "content": "s"},
                    {"role": "user", "content": "x"},
                ],
            },
            headers={"x-api-key": llm_fake.anthropic_key or "", "anthropic-version": "2023-06-01"},
        )
        no_version = await client.post(
            f"{llm_fake.anthropic_base}/v1/messages",
            json={"model": "c", "max_tokens": 5, "messages": [{"role": "user", "content": "x"}]},
            headers={"x-api-key": llm_fake.anthropic_key or ""},
        )
    assert no_usage.status_code == 400
    assert "include_usage" in no_usage.json()["error"]["message"]
    assert no_max_tokens.status_code == 400
    assert no_max_tokens.json()["errors"][0]["code"] == 5004
    assert system_role.status_code == 400
    assert 'Unexpected role "system"' in system_role.json()["error"]["message"]
    assert no_version.status_code == 400


async def test_scripts_play_in_fifo_order_then_the_responder(llm_fake: LLMFake) -> None:
    seen: list[Call] = []

    def responder(call: Call) -> ReplyScript:
        seen.append(call)
        return openai_error(503, "server_error")

    llm_fake.queue("openai", openai_error(429, "requests"), openai_error(500, "server_error"))
    llm_fake.respond_with("openai", responder)
    url = f"{llm_fake.openai_base}/chat/completions"
    async with httpx.AsyncClient() as client:
        statuses = [
            (await client.post(url, json=OPENAI_BODY, headers=_openai_auth(llm_fake))).status_code
            for _ in range(3)
        ]
    assert statuses == [429, 500, 503]
    assert seen == [llm_fake.calls[-1]]


async def test_split_pieces_reach_the_client_as_separate_reads(llm_fake: LLMFake) -> None:
    script = workers_stream(["é😀"]).split_every(2)
    llm_fake.queue("workers", script)
    async with (
        httpx.AsyncClient() as client,
        client.stream(
            "POST",
            f"{llm_fake.cloudflare_api_base}/accounts/a/ai/run/@cf/x",
            json={"messages": [{"role": "user", "content": "x"}], "max_tokens": 5},
            headers={"Authorization": f"Bearer {llm_fake.cloudflare_token}"},
        ) as response,
    ):
        reads = [chunk async for chunk in response.aiter_raw()]
    assert b"".join(reads) == script.raw
    assert len(reads) > len(script.pieces) // 2  # most pieces arrive on their own


async def test_paced_streams_are_slow(llm_fake: LLMFake) -> None:
    llm_fake.queue("openai", openai_stream(["a", "b"]).paced(0.02))
    started = time.monotonic()
    async with httpx.AsyncClient() as client:
        response = await client.post(
            f"{llm_fake.openai_base}/chat/completions",
            json=OPENAI_BODY,
            headers=_openai_auth(llm_fake),
        )
    assert response.status_code == 200
    assert time.monotonic() - started >= 0.02 * 6  # role, 2 pieces, finish, usage, [DONE]


async def test_a_separate_process_can_stream_from_the_fake(llm_fake: LLMFake) -> None:
    llm_fake.queue("openai", openai_stream(["from ", "another ", "process"]))
    script = (
        "import json, sys, urllib.request\n"
        "req = urllib.request.Request(sys.argv[1], data=sys.argv[2].encode(), headers={\n"
        "    'Authorization': sys.argv[3], 'Content-Type': 'application/json'})\n"
        "print(urllib.request.urlopen(req, timeout=5).read().decode())\n"
    )
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        script,
        f"{llm_fake.openai_base}/chat/completions",
        json.dumps(OPENAI_BODY),
        _openai_auth(llm_fake)["Authorization"],
        stdout=asyncio.subprocess.PIPE,
    )
    out, _ = await asyncio.wait_for(proc.communicate(), timeout=10)
    assert proc.returncode == 0
    assert '"content":"another "' in out.decode()
    assert out.decode().rstrip().endswith("data: [DONE]")
