"""The fake LLM server: routes, strict auth and body checks, call records, script playback."""

from __future__ import annotations

import asyncio
import base64
import json
import re
import socket
import time
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from aiohttp import web

from tests.fakes.llm.scripts import (
    ReplyScript,
    Script,
    anthropic_error,
    anthropic_stream,
    openai_error,
    openai_stream,
    workers_error,
    workers_stream,
)

Family = Literal["workers", "openai", "anthropic", "moderation"]
FAMILIES: tuple[Family, ...] = ("workers", "openai", "anthropic", "moderation")


@dataclass(frozen=True, slots=True)
class Call:
    """One request the fake received."""

    family: Family
    method: str
    path: str
    headers: dict[str, str]  # names lower-cased
    body: Any  # parsed JSON, or None when the body was not JSON
    at: float  # time.monotonic()
    params: dict[str, str]  # route parts: account, gateway, model


Responder = Callable[[Call], Script]


# --- the server --------------------------------------------------------------------------------


class LLMFake:
    """The fake server. Configure the credentials it demands; None turns a check off."""

    def __init__(
        self,
        *,
        cloudflare_token: str | None = "cf-test-token",
        gateway_token: str | None = None,
        openai_key: str | None = "sk-test-openai-key",
        anthropic_key: str | None = "sk-ant-test-key",
        default_pieces: Sequence[str] = ("Hello", " from", " the fake"),
        port: int = 0,
    ) -> None:
        self.cloudflare_token = cloudflare_token
        self.gateway_token = gateway_token
        self.openai_key = openai_key
        self.anthropic_key = anthropic_key
        self.default_pieces = tuple(default_pieces)
        self.calls: list[Call] = []
        self._queues: dict[Family, deque[Script]] = {f: deque() for f in FAMILIES}
        self._responders: dict[Family, Responder] = {}
        self._runner: web.AppRunner | None = None
        self._port = port
        self.recordings: dict[bytes, tuple[str, float]] = {}
        """What each recording says and how long it is, for the speech models (`hear`)."""
        self.transcriptions: list[Call] = []
        """Calls to OpenAI's transcription endpoint (Workers AI's are in `calls`)."""

    def hear(self, audio: bytes, text: str, seconds: float) -> None:
        """Make `audio` transcribe to `text` (Workers AI Whisper and OpenAI transcriptions)."""
        self.recordings[audio] = (text, seconds)

    # lifecycle

    async def start(self) -> LLMFake:
        app = web.Application()
        app.router.add_post("/client/v4/accounts/{account}/ai/run/{model:.*}", self._workers)
        app.router.add_post("/gateway/v1/{account}/{gateway}/workers-ai/{model:.*}", self._gateway)
        app.router.add_post("/openai/v1/chat/completions", self._openai)
        # Google's and xAI's OpenAI-compatible endpoints: the same wire format, their own paths.
        app.router.add_post("/gemini/v1beta/openai/chat/completions", self._openai)
        app.router.add_post("/xai/v1/chat/completions", self._openai)
        app.router.add_post("/anthropic/v1/messages", self._anthropic)
        app.router.add_post("/openai/v1/moderations", self._moderation)
        app.router.add_post("/openai/v1/audio/transcriptions", self._transcription)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.1)
        await self._runner.setup()
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", self._port))
        self._port = sock.getsockname()[1]
        await web.SockSite(self._runner, sock).start()
        return self

    async def close(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> LLMFake:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # addresses

    @property
    def port(self) -> int:
        return self._port

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._port}"

    @property
    def cloudflare_api_base(self) -> str:
        return f"{self.url}/client/v4"

    @property
    def gateway_base(self) -> str:
        return f"{self.url}/gateway/v1"

    @property
    def openai_base(self) -> str:
        return f"{self.url}/openai/v1"

    @property
    def gemini_base(self) -> str:
        return f"{self.url}/gemini/v1beta/openai"

    @property
    def xai_base(self) -> str:
        return f"{self.url}/xai/v1"

    @property
    def anthropic_base(self) -> str:
        return f"{self.url}/anthropic"

    # scripting

    def queue(self, family: Family, *scripts: Script) -> None:
        """Answer the next valid requests of `family` with these scripts, in order."""
        self._queues[family].extend(scripts)

    def respond_with(self, family: Family, responder: Responder) -> None:
        """Answer `family` with `responder(call)` whenever its queue is empty."""
        self._responders[family] = responder

    def pending(self, family: Family) -> int:
        return len(self._queues[family])

    def calls_to(self, family: Family) -> list[Call]:
        return [c for c in self.calls if c.family == family]

    def default_script(self, call: Call) -> Script:
        if call.family == "workers":
            return workers_stream(self.default_pieces)
        if call.family == "openai":
            return openai_stream(self.default_pieces)
        if call.family == "moderation":
            return moderation_result(flagged=False)
        return anthropic_stream(self.default_pieces)

    # handlers

    async def _workers(self, request: web.Request) -> web.StreamResponse:
        return await self._serve(request, "workers", self._check_workers)

    async def _gateway(self, request: web.Request) -> web.StreamResponse:
        return await self._serve(request, "workers", self._check_gateway)

    async def _openai(self, request: web.Request) -> web.StreamResponse:
        return await self._serve(request, "openai", self._check_openai)

    async def _moderation(self, request: web.Request) -> web.StreamResponse:
        return await self._serve(request, "moderation", self._check_moderation)

    async def _anthropic(self, request: web.Request) -> web.StreamResponse:
        return await self._serve(request, "anthropic", self._check_anthropic)

    async def _serve(
        self, request: web.Request, family: Family, check: Callable[[Call], ReplyScript | None]
    ) -> web.StreamResponse:
        raw = await request.read()
        try:
            body = json.loads(raw)
        except ValueError:
            body = None
        call = Call(
            family=family,
            method=request.method,
            path=request.path,
            headers={k.lower(): v for k, v in request.headers.items()},
            body=body,
            at=time.monotonic(),
            params=dict(request.match_info),
        )
        self.calls.append(call)
        # A rejected request never consumes a script: the script was meant for a valid one.
        script = check(call) or self._next(call)
        return await _play(request, script)

    def _next(self, call: Call) -> Script:
        queue = self._queues[call.family]
        if queue:
            return queue.popleft()
        responder = self._responders.get(call.family, self.default_script)
        return responder(call)

    # strict checks: each returns the provider's own rejection, or None

    def _check_workers(self, call: Call) -> ReplyScript | None:
        if self.cloudflare_token and not _bearer(call, "authorization", self.cloudflare_token):
            return workers_error(10000)
        if "/@cf/openai/whisper" in call.path:
            return self._whisper(call)
        return _validate_workers_body(call.body, call.path)

    def _whisper(self, call: Call) -> ReplyScript:
        """Workers AI Whisper turbo: `{"audio": base64}` in, its words in the envelope out."""
        body = call.body if isinstance(call.body, dict) else {}
        try:
            audio = base64.b64decode(str(body.get("audio")), validate=True)
        except ValueError:
            return workers_error(5006, 400, "Invalid input: audio must be a base64 string")
        if body.get("task", "transcribe") not in ("transcribe", "translate"):
            return workers_error(5006, 400, "Invalid input: task")
        if audio not in self.recordings:
            return workers_error(3010, 400, "Invalid or incomplete input for the model")
        text, seconds = self.recordings[audio]
        info = {"language": "en", "duration": seconds, "duration_after_vad": seconds}
        result = {"text": text, "transcription_info": info, "segments": []}
        return ReplyScript(200, {"result": result, "success": True, "errors": [], "messages": []})

    async def _transcription(self, request: web.Request) -> web.StreamResponse:
        """OpenAI's /v1/audio/transcriptions: multipart `file` and `model`, JSON out."""
        form = await request.post()
        headers = {k.lower(): v for k, v in request.headers.items()}
        fields = {k: v for k, v in form.items() if isinstance(v, str)}
        self.transcriptions.append(Call("openai", "POST", request.path, headers, fields,
                                        time.monotonic(), {}))  # fmt: skip
        upload = form.get("file")
        if headers.get("authorization") != f"Bearer {self.openai_key}":
            return _reply(
                openai_error(401, "invalid_request_error", "invalid_api_key", "Incorrect API key")
            )
        if fields.get("model") not in ("gpt-4o-mini-transcribe", "gpt-4o-transcribe", "whisper-1"):
            return _reply(openai_error(400, "invalid_request_error", None, "model: invalid"))
        if not isinstance(upload, web.FileField):
            return _reply(openai_error(400, "invalid_request_error", None, "file: required"))
        audio = upload.file.read()
        if audio not in self.recordings:
            message = "Audio file might be corrupted or unsupported"
            return _reply(openai_error(400, "invalid_request_error", "invalid_value", message))
        text, seconds = self.recordings[audio]
        return web.json_response({"text": text, "usage": {"type": "duration", "seconds": seconds}})

    def _check_gateway(self, call: Call) -> ReplyScript | None:
        if self.gateway_token and not _bearer(call, "cf-aig-authorization", self.gateway_token):
            envelope = {"success": False, "result": [], "messages": []}
            errors = [{"code": 2009, "message": "Unauthorized"}]
            return ReplyScript(401, envelope | {"errors": errors})
        return self._check_workers(call)

    def _check_openai(self, call: Call) -> ReplyScript | None:
        if self.openai_key:
            auth = call.headers.get("authorization", "")
            if not auth:
                message = (
                    "You didn't provide an API key. You need to provide your API key in an "
                    "Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY)."
                )
                return openai_error(401, "invalid_request_error", None, message)
            if auth != f"Bearer {self.openai_key}":
                given = auth.removeprefix("Bearer ")
                masked = given[:6] + "*" * max(0, len(given) - 10) + given[-4:]
                message = f"Incorrect API key provided: {masked}. You can find your API key at ..."
                return openai_error(401, "invalid_request_error", "invalid_api_key", message)
        return _validate_openai_body(call.body)

    def _check_moderation(self, call: Call) -> ReplyScript | None:
        if self.openai_key and call.headers.get("authorization") != f"Bearer {self.openai_key}":
            return openai_error(
                401, "invalid_request_error", "invalid_api_key", "Incorrect API key"
            )
        body = call.body
        if not isinstance(body, dict) or not isinstance(body.get("input"), str | list):
            return openai_error(400, "invalid_request_error", None, "input: required")
        return None

    def _check_anthropic(self, call: Call) -> ReplyScript | None:
        if self.anthropic_key and call.headers.get("x-api-key") != self.anthropic_key:
            return anthropic_error(401, "authentication_error", "invalid x-api-key")
        if "anthropic-version" not in call.headers:
            return anthropic_error(
                400, "invalid_request_error", "anthropic-version: header is required"
            )
        return _validate_anthropic_body(call.body)


# --- body validation ---------------------------------------------------------------------------


def _validate_messages(body: object, roles: Iterable[str]) -> str | None:
    if not isinstance(body, dict):
        return "the body must be a JSON object"
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        return "messages: must be a non-empty list"
    allowed = set(roles)
    for i, m in enumerate(messages):
        if not isinstance(m, dict) or "role" not in m or "content" not in m:
            return f"messages.{i}: needs role and content"
        if m["role"] not in allowed:
            return f"messages.{i}.role: unexpected role {m['role']!r}"
        calls = m.get("tool_calls")
        if m["content"] is None and m["role"] == "assistant" and calls:
            continue  # an assistant that only called tools
        if not isinstance(m["content"], str | list):
            return f"messages.{i}.content: must be a string or a list"
    return None


def _tool_turns_problem(messages: list[dict[str, Any]]) -> str | None:
    """Chat Completions: an assistant's `tool_calls` well formed, and every `tool` message
    answering a call of the assistant message before it (OpenAI's own 400s)."""
    open_ids: set[str] = set()
    for i, m in enumerate(messages):
        if m["role"] == "tool":
            call_id = m.get("tool_call_id")
            if not isinstance(call_id, str) or call_id not in open_ids:
                return (
                    f"messages.[{i}].role: messages with role 'tool' must be a response to a "
                    "preceeding message with 'tool_calls'."
                )
            open_ids.discard(call_id)
            continue
        if open_ids:
            return (
                "An assistant message with 'tool_calls' must be followed by tool messages "
                f"responding to each 'tool_call_id'. The following tool_call_ids did not have "
                f"response messages: {', '.join(sorted(open_ids))}"
            )
        for j, call in enumerate(m.get("tool_calls") or []):
            where = f"messages.{i}.tool_calls.{j}"
            function = call.get("function") if isinstance(call, dict) else None
            if not isinstance(function, dict) or call.get("type") != "function":
                return f"{where}: must be {{id, type: 'function', function}}"
            if not isinstance(call.get("id"), str) or not call["id"]:
                return f"{where}.id: required"
            if not isinstance(function.get("arguments"), str):
                return f"{where}.function.arguments: must be a JSON string"
            try:
                json.loads(function["arguments"])
            except ValueError:
                return f"{where}.function.arguments: not valid JSON"
            open_ids.add(call["id"])
    return None


def _has_tool_blocks(messages: list[dict[str, Any]]) -> bool:
    return any(
        isinstance(b, dict) and b.get("type") in ("tool_use", "tool_result")
        for m in messages
        if isinstance(m["content"], list)
        for b in m["content"]
    )


def _anthropic_turns_problem(messages: list[dict[str, Any]]) -> str | None:
    """Messages API: every `tool_use` answered by a `tool_result` (first) in the next user
    turn, and no `tool_result` for a call that turn did not make."""
    open_ids: set[str] = set()
    for i, m in enumerate(messages):
        blocks = m["content"] if isinstance(m["content"], list) else []
        for j, block in enumerate(blocks):
            if not isinstance(block, dict) or not isinstance(block.get("type"), str):
                return f"messages.{i}.content.{j}: Input should be a valid dictionary"
            if block["type"] == "image":
                source = block.get("source") if isinstance(block.get("source"), dict) else {}
                if source.get("type") != "base64":
                    return f"messages.{i}.content.{j}.source: expected a base64 source"
                where = f"messages.{i}.content.{j}.source"
                problem = _picture_problem(
                    where, str(source.get("media_type")), str(source.get("data"))
                )
                if problem:
                    return problem
                if m["role"] != "user":
                    return f"messages.{i}.content.{j}: images are for user turns"
        results = [b.get("tool_use_id") for b in blocks if b["type"] == "tool_result"]
        if m["role"] == "user":
            if open_ids and set(results) != open_ids:
                return (
                    f"messages.{i}: `tool_use` ids were found without `tool_result` blocks "
                    f"immediately after: {', '.join(sorted(open_ids - set(results)))}"
                )
            if any(r not in open_ids for r in results):
                return (
                    f"messages.{i}.content: unexpected `tool_use_id` found in `tool_result` "
                    "blocks. Each `tool_result` block must have a corresponding `tool_use` "
                    "block in the previous message."
                )
            kinds = [b["type"] for b in blocks]
            if results and kinds[: len(results)] != ["tool_result"] * len(results):
                return f"messages.{i}: tool_result blocks must come first in the content"
            open_ids = set()
        else:
            if open_ids:
                return f"messages.{i}: `tool_use` ids were found without `tool_result` blocks"
            if results:
                return f"messages.{i}: tool_result blocks belong in user turns"
            for j, block in enumerate(blocks):
                if block["type"] == "tool_use":
                    if not isinstance(block.get("input"), dict):
                        return f"messages.{i}.content.{j}.input: Input should be a dictionary"
                    open_ids.add(str(block.get("id")))
    return None


IMAGE_MAGIC = {
    "image/png": b"\x89PNG\r\n\x1a\n",
    "image/jpeg": b"\xff\xd8\xff",
    "image/gif": b"GIF8",
    "image/webp": b"RIFF",
}
DATA_URL = re.compile(r"^data:(image/[a-z]+);base64,([A-Za-z0-9+/=]+)$")
VISION_WORKERS = (
    "@cf/meta/llama-4-scout-17b-16e-instruct",
    "@cf/meta/llama-3.2-11b-vision-instruct",
    "@cf/google/gemma-3-12b-it",
    "@cf/mistralai/mistral-small-3.1-24b-instruct",
)
"""Workers AI models whose messages take content parts (text and image_url); the others take
a string only (their input schemas)."""


def _picture_problem(where: str, media_type: str, data: str) -> str | None:
    """A base64 picture as the APIs check it: a known type, decodable, the bytes of that type."""
    magic = IMAGE_MAGIC.get(media_type)
    if magic is None:
        return f"{where}: unsupported image type {media_type!r}"
    try:
        raw = base64.b64decode(data, validate=True)
    except ValueError:
        return f"{where}: invalid base64 data"
    if not raw.startswith(magic):
        return f"{where}: Image does not match the provided media type {media_type}"
    return None


def _parts_problem(messages: list[dict[str, Any]]) -> str | None:
    """Chat Completions content parts: text, or image_url with a data URL (or https URL)."""
    for i, m in enumerate(messages):
        if not isinstance(m["content"], list):
            continue
        if m["role"] != "user":
            return f"messages.{i}.content: content parts are for user messages here"
        for j, part in enumerate(m["content"]):
            where = f"messages.{i}.content.{j}"
            kind = part.get("type") if isinstance(part, dict) else None
            if kind == "text" and isinstance(part.get("text"), str):
                continue
            if kind != "image_url" or not isinstance(part.get("image_url"), dict):
                return f"{where}: expected a text or image_url part"
            url = str(part["image_url"].get("url") or "")
            found = DATA_URL.match(url)
            if found is None:
                return f"{where}.image_url.url: expected a base64 data URL"
            if problem := _picture_problem(where, found[1], found[2]):
                return problem
    return None


def _validate_workers_body(body: object, path: str = "") -> ReplyScript | None:
    problem = _validate_messages(body, ("system", "user", "assistant", "tool"))
    if problem is None and isinstance(body, dict) and not path.endswith(VISION_WORKERS):
        listed = [i for i, m in enumerate(body["messages"]) if isinstance(m["content"], list)]
        if listed:
            problem = f"messages.{listed[0]}.content: Type mismatch, expected string"
    if problem is None and isinstance(body, dict):
        if not _positive_int(body.get("max_tokens")):
            problem = "max_tokens: required (the fake insists: the default 256 cuts answers)"
        elif "stream" in body and not isinstance(body["stream"], bool):
            problem = "stream: must be a boolean"
        problem = problem or _sampling_problem(body) or _function_tools_problem(body)
        problem = problem or _tool_turns_problem(body["messages"])
        problem = problem or _parts_problem(body["messages"])
    return None if problem is None else workers_error(5004, 400, f"Invalid data: {problem}")


def _validate_openai_body(body: object) -> ReplyScript | None:
    roles = ("system", "developer", "user", "assistant", "tool")
    problem = _validate_messages(body, roles)
    if problem is None and isinstance(body, dict):
        if not isinstance(body.get("model"), str) or not body["model"]:
            problem = "you must provide a model parameter"
        elif "max_tokens" in body and not _positive_int(body["max_tokens"]):
            problem = "max_tokens: must be a positive integer"
        elif body.get("stream") is True:
            options = body.get("stream_options")
            if not isinstance(options, dict) or options.get("include_usage") is not True:
                problem = "stream_options.include_usage: the fake requires it with stream=true"
        problem = problem or _sampling_problem(body) or _function_tools_problem(body)
        problem = problem or _tool_turns_problem(body["messages"])
        problem = problem or _parts_problem(body["messages"])
        if problem is None and "tool_choice" in body:
            choice = body["tool_choice"]
            if "tools" not in body:
                problem = "tool_choice: only allowed when tools are specified"
            elif not (choice in ("auto", "none", "required") or isinstance(choice, dict)):
                problem = f"tool_choice: invalid value {choice!r}"
    if problem is None:
        return None
    return openai_error(400, "invalid_request_error", None, problem)


def _validate_anthropic_body(body: object) -> ReplyScript | None:
    problem = _validate_messages(body, ("user", "assistant", "system"))
    if problem is None and isinstance(body, dict):
        roles = [m["role"] for m in body["messages"]]
        if "system" in roles:
            problem = (
                'messages: Unexpected role "system". The Messages API accepts a top-level '
                '`system` parameter, not "system" as an input message role.'
            )
        elif not isinstance(body.get("model"), str) or not body["model"]:
            problem = "model: Field required"
        elif not _positive_int(body.get("max_tokens")):
            problem = "max_tokens: Field required"
        elif "system" in body and not isinstance(body["system"], str | list):
            problem = "system: Input should be a valid string or list"
        problem = problem or _sampling_problem(body) or _anthropic_tools_problem(body)
        problem = problem or _anthropic_turns_problem(body["messages"])
        if problem is None and "tools" not in body and _has_tool_blocks(body["messages"]):
            problem = "Requests which include `tool_use` or `tool_result` blocks must define tools."
    if problem is None:
        return None
    return anthropic_error(400, "invalid_request_error", problem)


_TOOL_NAME = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")


def _sampling_problem(body: dict[str, Any]) -> str | None:
    top_p = body.get("top_p")
    if "top_p" in body and (
        isinstance(top_p, bool) or not isinstance(top_p, int | float) or not 0 <= top_p <= 1
    ):
        return "top_p: must be a number between 0 and 1"
    return None


def _schema_problem(where: str, schema: object) -> str | None:
    if not isinstance(schema, dict) or schema.get("type") != "object":
        return f"{where}: must be a JSON schema with type 'object'"
    if "properties" in schema and not isinstance(schema["properties"], dict):
        return f"{where}.properties: must be an object"
    return None


def _tools_list(body: dict[str, Any]) -> tuple[list[Any] | None, str | None]:
    if "tools" not in body:
        return None, None
    tools = body["tools"]
    if not isinstance(tools, list) or not tools:
        return None, "tools: must be a non-empty list when present"
    return tools, None


def _tool_names_problem(names: list[object]) -> str | None:
    for i, name in enumerate(names):
        if not isinstance(name, str) or not _TOOL_NAME.match(name):
            return f"tools.{i}.name: must match ^[a-zA-Z0-9_-]{{1,64}}$"
    if len(set(map(str, names))) != len(names):
        return "tools: tool names must be unique"
    return None


def _function_tools_problem(body: dict[str, Any]) -> str | None:
    """OpenAI-style `tools` (also what Workers AI takes): function objects, strictly."""
    tools, problem = _tools_list(body)
    if tools is None:
        return problem
    names: list[object] = []
    for i, tool in enumerate(tools):
        if not isinstance(tool, dict) or tool.get("type") != "function":
            return f"tools.{i}.type: must be 'function'"
        function = tool.get("function")
        if not isinstance(function, dict) or set(tool) - {"type", "function"}:
            return f"tools.{i}: must be {{type, function}}"
        if set(function) - {"name", "description", "parameters", "strict"}:
            return f"tools.{i}.function: unexpected fields {sorted(set(function))}"
        if "description" in function and not isinstance(function["description"], str):
            return f"tools.{i}.function.description: must be a string"
        if "parameters" in function:
            problem = _schema_problem(f"tools.{i}.function.parameters", function["parameters"])
            if problem:
                return problem
        names.append(function.get("name"))
    return _tool_names_problem(names)


def _anthropic_tools_problem(body: dict[str, Any]) -> str | None:
    """Anthropic custom tools: {name, description?, input_schema}, nothing OpenAI-shaped."""
    tools, problem = _tools_list(body)
    if tools is None:
        return problem
    names: list[object] = []
    for i, tool in enumerate(tools):
        if not isinstance(tool, dict):
            return f"tools.{i}: Input should be a valid dictionary"
        extra = set(tool) - {"name", "description", "input_schema", "type", "cache_control"}
        if extra:
            return f"tools.{i}: Extra inputs are not permitted: {sorted(extra)}"
        if "input_schema" not in tool:
            return f"tools.{i}.input_schema: Field required"
        problem = _schema_problem(f"tools.{i}.input_schema", tool["input_schema"])
        if problem:
            return problem
        names.append(tool.get("name"))
    return _tool_names_problem(names)


# --- playing scripts ---------------------------------------------------------------------------


async def _play(request: web.Request, script: Script) -> web.StreamResponse:
    if isinstance(script, ReplyScript):
        body = script.body if isinstance(script.body, bytes) else json.dumps(script.body).encode()
        headers = {"Content-Type": script.content_type, **script.headers}
        return web.Response(status=script.status, body=body, headers=headers)
    headers = {"Content-Type": script.content_type, "Cache-Control": "no-cache", **script.headers}
    response = web.StreamResponse(status=script.status, headers=headers)
    await response.prepare(request)
    try:
        for piece in script.pieces:
            if piece.delay > 0:
                await asyncio.sleep(piece.delay)
            await response.write(piece.data)
            if script.sent is not None:
                script.sent.append(time.monotonic())
        if script.drop:
            if request.transport is not None:
                request.transport.abort()  # no terminating chunk: the client sees a cut stream
            return response
        await response.write_eof()
    except ConnectionError:
        pass  # the client went away (it stopped reading, or pressed Stop)
    return response


def _bearer(call: Call, header: str, token: str) -> bool:
    return call.headers.get(header) == f"Bearer {token}"


def _positive_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value > 0


def moderation_result(*, flagged: bool, categories: Sequence[str] = ()) -> ReplyScript:
    """An OpenAI /moderations answer for one input."""
    names = ("harassment", "hate", "self-harm", "sexual", "violence", *categories)
    return ReplyScript(
        200,
        {
            "id": "modr-test",
            "model": "omni-moderation-latest",
            "results": [
                {
                    "flagged": flagged,
                    "categories": {name: name in categories for name in names},
                    "category_scores": {
                        name: 0.9 if name in categories else 0.01 for name in names
                    },
                }
            ],
        },
    )


def llama_guard_result(response: str) -> ReplyScript:
    """A Workers AI native (non-streamed) answer from Llama Guard: "safe" or "unsafe\\nS1"."""
    return ReplyScript(
        200, {"result": {"response": response}, "success": True, "errors": [], "messages": []}
    )


def _reply(script: ReplyScript) -> web.Response:
    return web.json_response(script.body, status=script.status)
