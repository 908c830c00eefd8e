"""Reply streams in the shapes real providers send, each with the text a chat reply must end up
showing: only the answer, or the notice that says why there is none (used by the Discord and the
Slack end-to-end tests alike)."""

from __future__ import annotations

from typing import Any

from tests.fakes.llm_server import sse


def choice(delta: dict[str, Any]) -> bytes:
    """An OpenAI-shaped chunk, as Workers AI's native route also sends."""
    return sse({"choices": [{"index": 0, "delta": delta}]})


THOUGHT = {"type": "thinking", "thinking": [{"type": "text", "text": "plan"}]}
SHAPES: dict[str, tuple[list[bytes], str]] = {
    "inline-think": (
        [sse({"response": r}) for r in ("<think>plan", "ning</th", "ink>\n\nFour.")],
        "Four.",
    ),
    "content-parts": (
        [
            choice({"content": [THOUGHT]}),
            choice({"content": [{"type": "text", "text": "Fo"}, {"type": "text", "text": "ur."}]}),
        ],
        "Four.",
    ),
    "reasoning-only": (
        [choice({"reasoning": "planning"})],
        "_(The model thought it over but gave no answer.)_",
    ),
    "empty": ([sse({"response": ""})], "_(The model returned an empty answer.)_"),
}
"""Shape name -> (its events before [DONE], what the reply shows). The reasoning is "plan…"."""
