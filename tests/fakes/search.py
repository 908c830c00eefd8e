"""A strict fake of the Tavily Search API on 127.0.0.1: `POST /search`.

It checks the Bearer key (401 in Tavily's shape otherwise), the body (a non-empty `query`,
`max_results` 0–20, `search_depth` basic/advanced, `topic` general/news: 400 otherwise), records
every call, and answers from a small index of pages whose words match the query, or with a
scripted status (`fail_next`).
"""

from __future__ import annotations

import asyncio
from collections import deque
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from tests.fakes.network import Loopback

KEY = "tvly-fake-key-123"
PAGES = [
    ("Python 3.14 released", "https://www.python.org/downloads/release/python-3140/",
     "Python 3.14.0 is the newest major release, with free-threading and template strings."),
    ("What's new in Python 3.14", "https://docs.python.org/3/whatsnew/3.14.html",
     "This article explains the new features in Python 3.14, compared to 3.13."),
    ("Discord rate limits", "https://discord.com/developers/docs/topics/rate-limits",
     "Rate limits are applied per route and globally: 50 requests per second."),
]  # fmt: skip


@dataclass
class SearchCall:
    headers: dict[str, str]
    body: Any


class SearchFake(Loopback):
    def __init__(self) -> None:
        self.calls: list[SearchCall] = []
        self._failures: deque[tuple[int, float]] = deque()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def fail_next(self, status: int, *, delay: float = 0.0) -> None:
        self._failures.append((status, delay))

    async def __aenter__(self) -> SearchFake:
        app = web.Application()
        app.router.add_post("/search", self._search)
        await self.serve(app)
        return self

    async def _search(self, request: web.Request) -> web.Response:
        try:
            body = await request.json()
        except ValueError:
            body = None
        self.calls.append(SearchCall(dict(request.headers), body))
        if request.headers.get("Authorization") != f"Bearer {KEY}":
            detail = {"error": "Unauthorized: missing or invalid API key."}
            return web.json_response({"detail": detail}, status=401)
        if self._failures:
            status, delay = self._failures.popleft()
            await asyncio.sleep(delay)
            return web.json_response({"detail": {"error": "scripted failure"}}, status=status)
        problem = _problem(body)
        if problem:
            return web.json_response({"detail": {"error": problem}}, status=400)
        words = body["query"].lower().split()
        found = [
            {"title": t, "url": u, "content": c, "score": 0.9, "raw_content": None}
            for t, u, c in PAGES
            if all(w in f"{t} {c}".lower() for w in words)
        ][: body.get("max_results", 5)]
        return web.json_response(
            {"query": body["query"], "answer": None, "images": [], "results": found,
             "response_time": 0.42},
        )  # fmt: skip


def _problem(body: Any) -> str | None:
    if not isinstance(body, dict):
        return "the body must be a JSON object"
    query = body.get("query")
    if not isinstance(query, str) or not query.strip():
        return "query is required"
    results = body.get("max_results", 5)
    if not isinstance(results, int) or isinstance(results, bool) or not 0 <= results <= 20:
        return "max_results must be between 0 and 20"
    if body.get("search_depth", "basic") not in ("basic", "advanced"):
        return "search_depth must be basic or advanced"
    if body.get("topic", "general") not in ("general", "news"):
        return "topic must be general or news"
    if "api_key" in body:
        return "send the key as a Bearer token, not in the body"
    return None
