"""Web search as a built-in tool, through the Tavily Search API (made for LLM agents).

`POST {TAVILY_BASE_URL}/search` with the key as a Bearer token and `{query, max_results,
search_depth, topic}`; the answer's `results` (`title`, `url`, `content`) go to the model
numbered, with their links, and the instruction to cite them as Markdown links. The user sees
the progress line ("> 🔎 Searching the web for “…” … 5 results (0.8 s)") and the model's cited
answer, never the raw results. Failures (a refused key, a rate limit, the plan's limit, a
timeout) are errors the model hears and the line names; the key never appears in either.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import httpx

from bot.llm.types import ToolSpec
from bot.tools import Action, ToolResult, allowed

log = logging.getLogger("parley.tools.search")

SERVER, TOOL = "web", "search"
MAX_RESULTS = 5
SNIPPET_CHARS = 700
"""Characters of each result's content the model reads."""
TIMEOUT = 20.0
PARAMETERS: Mapping[str, object] = {
    "type": "object",
    "properties": {
        "query": {"type": "string", "description": "What to search the web for."},
        "topic": {
            "type": "string",
            "enum": ["general", "news"],
            "description": "news for current events; general otherwise.",
        },
    },
    "required": ["query"],
}
DESCRIPTION = (
    "Search the web for current information. Returns numbered results with their links; cite "
    "the ones you use as Markdown links, e.g. [1](https://example.com)."
)
_REFUSALS = {
    401: "the search provider refused the key",
    429: "the search provider is rate limiting us",
    432: "the search plan's limit is reached",
    433: "the search plan's limit is reached",
}


class WebSearch:
    """The `web.search` tool: one Action, offered wherever the persona (if any) allows `web`."""

    def __init__(
        self,
        api_key: str,
        *,
        base_url: str = "https://api.tavily.com",
        max_results: int = MAX_RESULTS,
        client: httpx.AsyncClient | None = None,
    ) -> None:
        self._url = base_url.rstrip("/") + "/search"
        self._key = api_key
        self._max = max_results
        self._client = client or httpx.AsyncClient(timeout=TIMEOUT)

    def actions(self, allow: tuple[str, ...] | None, *, acting: bool = True) -> list[Action]:
        if allow is not None and not allowed(allow, SERVER, TOOL):
            return []
        spec = ToolSpec(f"{SERVER}__{TOOL}", DESCRIPTION, PARAMETERS)
        return [Action(spec, f"{SERVER}.{TOOL}", self.search, doing="Searching the web for")]

    def offline(self) -> list[str]:
        return []  # nothing to connect: the tool is always listed

    async def search(self, arguments: Mapping[str, object]) -> ToolResult:
        query = arguments.get("query")
        if not isinstance(query, str) or not query.strip():
            return ToolResult("`query` must be a non-empty string", is_error=True)
        topic = arguments.get("topic") if arguments.get("topic") in ("general", "news") else None
        body: dict[str, Any] = {
            "query": query.strip()[:400],
            "max_results": self._max,
            "search_depth": "basic",
            "topic": topic or "general",
        }
        headers = {"authorization": f"Bearer {self._key}"}
        try:
            response = await self._client.post(self._url, json=body, headers=headers)
        except httpx.TimeoutException:
            return ToolResult.failed(f"the search took over {TIMEOUT:g} s")
        except httpx.HTTPError as exc:
            log.warning("web search unreachable: %s", type(exc).__name__)
            return ToolResult.failed("the search provider is unreachable")
        if response.status_code != 200:
            why = _REFUSALS.get(response.status_code, f"the search failed ({response.status_code})")
            log.warning("web search refused: %s", response.status_code)
            return ToolResult.failed(why)
        try:
            results = response.json().get("results") or []
        except (ValueError, AttributeError):
            return ToolResult.failed("the search provider answered nonsense")
        return _as_text(results)

    async def aclose(self) -> None:
        await self._client.aclose()


def _as_text(results: list[Any]) -> ToolResult:
    lines = []
    for number, result in enumerate(r for r in results if isinstance(r, dict)):
        title = str(result.get("title") or "").strip() or "(untitled)"
        url = str(result.get("url") or "").strip()
        content = " ".join(str(result.get("content") or "").split())[:SNIPPET_CHARS]
        lines.append(f"[{number + 1}] {title}\n{url}\n{content}")
    if not lines:
        return ToolResult("No results.", summary="no results")
    count = len(lines)
    return ToolResult("\n\n".join(lines), summary=f"{count} result{'s' if count > 1 else ''}")
