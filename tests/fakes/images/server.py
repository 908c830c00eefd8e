"""A fake of five image APIs on 127.0.0.1: OpenAI, Together, Replicate, Workers AI, Imagen.

Each provider has a mode (`fake.mode["openai"] = "fail"`): ok, fail (HTTP 500), quota, auth (401),
policy (content-policy refusal), slow (held until `fake.release(provider)`), drop (the connection
closes after the request was read: the outcome is unknown), async (Replicate: `starting`, then
`processing` for `replicate_polls` polls). Every call is recorded in `fake.calls`.
"""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import email.parser
import email.policy
import itertools
import json
import socket
from dataclasses import dataclass
from typing import Any

from aiohttp import web

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00\x00\x00\rIHDR" + b"fake-png-pixels" * 4
JPEG = b"\xff\xd8\xff\xe0" + b"fake-jpeg-pixels" * 4
PROVIDERS = ("openai", "together", "replicate", "workers-ai", "google")
ACCOUNT = "acct-img"


@dataclass(frozen=True, slots=True)
class Call:
    provider: str
    method: str
    path: str
    headers: dict[str, str]
    body: Any


class ImageFake:
    def __init__(self) -> None:
        self.keys = {
            "openai": "sk-img-openai-secret-0001",
            "together": "tg-img-together-secret-0002",
            "replicate": "r8_img_replicate_secret_0003",
            "workers-ai": "cf-img-workers-secret-0004",
            "google": "goog-img-imagen-secret-0005",
        }
        self.mode: dict[str, str] = dict.fromkeys(PROVIDERS, "ok")
        self.calls: list[Call] = []
        self.replicate_polls = 2
        self.echo_key_in_errors = False
        self._gates: dict[str, asyncio.Event] = {p: asyncio.Event() for p in PROVIDERS}
        self._arrived: dict[str, asyncio.Event] = {p: asyncio.Event() for p in PROVIDERS}
        self._ids = itertools.count(1)
        self._polls: dict[str, int] = {}
        self._runner: web.AppRunner | None = None
        self.port = 0

    # -- lifecycle --------------------------------------------------------------------------------

    async def __aenter__(self) -> ImageFake:
        app = web.Application()
        r = app.router
        r.add_post("/openai/v1/images/generations", self._openai)
        r.add_post("/together/v1/images/generations", self._together)
        r.add_post("/replicate/v1/models/{owner}/{name}/predictions", self._replicate_create)
        r.add_get("/replicate/v1/predictions/{id}", self._replicate_get)
        r.add_post("/replicate/v1/predictions/{id}/cancel", self._replicate_cancel)
        r.add_get("/delivery/{file}", self._delivery)
        r.add_post("/cf/client/v4/accounts/{account}/ai/run/{model:.*}", self._workers)
        r.add_post("/google/v1beta/models/{model}", self._google)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        self.port = sock.getsockname()[1]
        site = web.SockSite(self._runner, sock)
        await site.start()
        return self

    async def __aexit__(self, *_exc: object) -> None:
        for gate in self._gates.values():
            gate.set()
        if self._runner is not None:
            await self._runner.cleanup()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def base(self, provider: str) -> str:
        return {
            "openai": f"{self.url}/openai/v1",
            "together": f"{self.url}/together/v1",
            "replicate": f"{self.url}/replicate/v1",
            "workers-ai": f"{self.url}/cf/client/v4",
            "google": f"{self.url}/google/v1beta",
        }[provider]

    def calls_to(self, provider: str) -> list[Call]:
        return [c for c in self.calls if c.provider == provider]

    def release(self, provider: str) -> None:
        self._gates[provider].set()

    def reset(self) -> None:
        """Back to a fresh fake (all modes ok, no calls, gates closed) for the next test."""
        self.mode = dict.fromkeys(PROVIDERS, "ok")
        self.calls.clear()
        for gate in self._gates.values():
            gate.set()  # let anything still held go
        self._gates = {p: asyncio.Event() for p in PROVIDERS}
        self._arrived = {p: asyncio.Event() for p in PROVIDERS}

    async def arrived(self, provider: str) -> None:
        """Wait until a held (slow) request for `provider` has reached the fake."""
        await self._arrived[provider].wait()

    # -- shared behaviour -------------------------------------------------------------------------

    async def _enter(
        self, provider: str, request: web.Request, auth_ok: bool
    ) -> web.Response | None:
        """Record the call and play the mode; a Response means "answer this instead"."""
        raw = await request.read()
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = None
        headers = {k.lower(): v for k, v in request.headers.items()}
        self.calls.append(Call(provider, request.method, request.path, headers, body))
        if not auth_ok:
            return self._error(provider, 401, "invalid_api_key", "Incorrect API key provided")
        mode = self.mode[provider]
        if mode == "slow":
            self._arrived[provider].set()
            await self._gates[provider].wait()
            return None
        if mode == "drop":
            assert request.transport is not None
            request.transport.close()
            return web.Response(status=500)
        if mode == "fail":
            return self._error(provider, 500, "server_error", "The server had an error")
        if mode == "auth":
            return self._error(provider, 401, "invalid_api_key", "Incorrect API key provided")
        if mode == "quota":
            if provider == "workers-ai":
                return web.json_response(
                    {
                        "success": False,
                        "errors": [{"code": 3036, "message": "daily free allocation"}],
                    },
                    status=429,
                )
            return self._error(provider, 429, "insufficient_quota", "You exceeded your quota")
        if mode == "policy":
            return self._error(provider, 400, "content_policy_violation",
                               "Your request was rejected by the safety system")  # fmt: skip
        return None

    def _error(self, provider: str, status: int, code: str, message: str) -> web.Response:
        if self.echo_key_in_errors:
            message += f" (key {self.keys[provider]})"
        if provider == "workers-ai":
            return web.json_response(
                {"success": False, "errors": [{"code": 7000 + status, "message": message}]},
                status=status,
            )
        if provider == "google":
            return web.json_response({"error": {"code": status, "message": message}}, status=status)
        return web.json_response(
            {"error": {"message": message, "type": "invalid_request_error", "code": code}},
            status=status,
        )

    def _bearer(self, request: web.Request, provider: str) -> bool:
        return request.headers.get("Authorization") == f"Bearer {self.keys[provider]}"

    # -- providers --------------------------------------------------------------------------------

    async def _openai(self, request: web.Request) -> web.StreamResponse:
        early = await self._enter("openai", request, self._bearer(request, "openai"))
        if early is not None:
            return early
        b64 = base64.b64encode(PNG).decode()
        return web.json_response({"created": 1, "data": [{"b64_json": b64}], "size": "1024x1024"})

    async def _together(self, request: web.Request) -> web.StreamResponse:
        early = await self._enter("together", request, self._bearer(request, "together"))
        if early is not None:
            return early
        body = self.calls[-1].body or {}
        if body.get("response_format") != "base64":
            return self._error("together", 400, "invalid_request", "response_format must be base64")
        b64 = base64.b64encode(PNG).decode()
        return web.json_response(
            {"id": "t1", "object": "list", "data": [{"b64_json": b64, "type": "b64_json"}]}
        )

    def _prediction(self, pid: str, status: str) -> dict[str, Any]:
        out = f"{self.url}/delivery/{pid}.png" if status == "succeeded" else None
        return {
            "id": pid,
            "status": status,
            "output": out,
            "error": None,
            "urls": {
                "get": f"{self.url}/replicate/v1/predictions/{pid}",
                "cancel": f"{self.url}/replicate/v1/predictions/{pid}/cancel",
            },
        }

    async def _replicate_create(self, request: web.Request) -> web.StreamResponse:
        early = await self._enter("replicate", request, self._bearer(request, "replicate"))
        if early is not None:
            return early
        pid = f"p{next(self._ids)}"
        if self.mode["replicate"] == "async":
            self._polls[pid] = 0
            return web.json_response(self._prediction(pid, "starting"), status=201)
        return web.json_response(self._prediction(pid, "succeeded"), status=201)

    async def _replicate_get(self, request: web.Request) -> web.StreamResponse:
        pid = request.match_info["id"]
        self.calls.append(Call("replicate", "GET", request.path, dict(request.headers), None))
        if not self._bearer(request, "replicate"):
            return self._error("replicate", 401, "unauthorized", "bad token")
        self._polls[pid] = self._polls.get(pid, 0) + 1
        status = "processing" if self._polls[pid] < self.replicate_polls else "succeeded"
        return web.json_response(self._prediction(pid, status))

    async def _replicate_cancel(self, request: web.Request) -> web.StreamResponse:
        pid = request.match_info["id"]
        self.calls.append(Call("replicate", "POST", request.path, dict(request.headers), None))
        return web.json_response(self._prediction(pid, "canceled"))

    async def _delivery(self, request: web.Request) -> web.StreamResponse:
        headers = {k.lower(): v for k, v in request.headers.items()}
        self.calls.append(Call("replicate-delivery", "GET", request.path, headers, None))
        return web.Response(body=PNG, content_type="image/png")

    async def _workers(self, request: web.Request) -> web.StreamResponse:
        early = await self._enter("workers-ai", request, self._bearer(request, "workers-ai"))
        if early is not None:
            return early
        model = request.match_info["model"]
        if "/flux-2" in model:  # FLUX.2: a multipart form in, JSON with a base64 PNG out
            if request.content_type != "multipart/form-data":
                return _schema_error("required properties at '/' are 'prompt'")
            form = _form_fields(request.headers["Content-Type"], await request.read())
            self.calls[-1] = dataclasses.replace(self.calls[-1], body=form)
            problem = _form_problem(form)
            if problem:
                return _schema_error(problem)
            b64 = base64.b64encode(PNG).decode()
            return web.json_response({"result": {"image": b64}, "success": True, "errors": []})
        body = self.calls[-1].body
        if not isinstance(body, dict) or not isinstance(body.get("prompt"), str):
            return _schema_error("required properties at '/' are 'prompt'")
        allowed = _FLUX1_FIELDS if "flux" in model else _SDXL_FIELDS
        if unknown := sorted(set(body) - allowed):
            return _schema_error(f"must NOT have additional properties: {', '.join(unknown)}")
        if "flux" in model:  # FLUX.1 schnell: JSON with a base64 JPEG
            b64 = base64.b64encode(JPEG).decode()
            return web.json_response({"result": {"image": b64}, "success": True, "errors": []})
        if not 1 <= int(body.get("num_steps", 20)) <= 20:
            return _schema_error("num_steps must be <= 20")
        return web.Response(body=PNG, content_type="image/png")  # SDXL base and Lightning

    async def _google(self, request: web.Request) -> web.StreamResponse:
        ok = request.headers.get("x-goog-api-key") == self.keys["google"]
        early = await self._enter("google", request, ok)
        if early is not None:
            return early
        if not request.match_info["model"].endswith(":predict"):
            return self._error("google", 404, "not_found", "unknown method")
        b64 = base64.b64encode(PNG).decode()
        return web.json_response(
            {"predictions": [{"bytesBase64Encoded": b64, "mimeType": "image/png"}]}
        )


# Workers AI's input schemas (its model JSONs): anything else is refused as the API does.
_FLUX1_FIELDS = frozenset({"prompt", "steps"})
_SDXL_FIELDS = frozenset(
    {"prompt", "negative_prompt", "height", "width", "num_steps", "guidance", "seed", "strength"}
)
_FLUX2_FIELDS = frozenset({"prompt", "steps", "guidance", "width", "height", "seed"})


def _form_fields(content_type: str, raw: bytes) -> dict[str, str]:
    """The fields of a multipart/form-data body (the request was already read whole)."""
    head = f"Content-Type: {content_type}\r\nMIME-Version: 1.0\r\n\r\n".encode()
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(head + raw)
    fields = {}
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        payload = part.get_payload(decode=True)
        if isinstance(name, str) and isinstance(payload, bytes):
            fields[name] = payload.decode()
    return fields


def _form_problem(form: dict[str, str]) -> str | None:
    if not form.get("prompt"):
        return "required properties at '/' are 'prompt'"
    if unknown := sorted(set(form) - _FLUX2_FIELDS - {f"input_image_{i}" for i in range(4)}):
        return f"must NOT have additional properties: {', '.join(unknown)}"
    for side in ("width", "height"):
        if side in form and not (form[side].isdigit() and 256 <= int(form[side]) <= 1920):
            return f"{side} must be between 256 and 1920"
    return None


def _schema_error(message: str) -> web.Response:
    return web.json_response(
        {"success": False, "errors": [{"code": 5006, "message": f"Error: {message}"}]}, status=400
    )
