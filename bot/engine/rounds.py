"""Rounds of tool calls inside one reply: the model asks, the tools run, the model goes on.

A round ends with calls to tools the turn offers (`Action`s: MCP tools); they run one after
another, each shown in the reply as a progress line that only grows ("> 🔧 `issues.search` …"
then " done (0.4 s)"), so surfaces that can only append show it too. The model then gets its
calls and their results as messages and streams on, on the same model (no fallback mid-turn),
for at most `max_rounds` rounds. Results are untrusted text: they go back as tool messages only,
and the user sees no more of them than the progress line.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass

from bot.clock import Clock
from bot.engine.approvals import Answer
from bot.llm.types import Message, ToolCall
from bot.ops.logs import event
from bot.tools import Action, ToolResult

log = logging.getLogger("parley.tools")

TOOL_ROUNDS = 8
"""Rounds of tool calls one reply may make (a model that keeps calling is stopped, and says so)."""
NOTICE_ROUNDS = "_(stopped: the model was still calling tools after {rounds} rounds)_"
PROGRESS, SEARCHING = "> 🔧 ", "> 🔎 "
"""How a progress line starts (a tool's, a search's)."""
ARGUMENT_SHOWN = 60
ARGUMENTS_SHOWN = 300
"""Characters of a call's arguments shown while it waits for approval."""
"""Characters of a call's first text argument shown in its progress line."""
DEFERRED_RESULT = (
    "The user will be offered this as a quote when your reply ends; nothing is charged until "
    "they confirm. Do not call it again in this reply."
)
"""What the model hears of a generate_image call made in the same round as other tools."""


@dataclass(frozen=True, slots=True)
class RoundCalls:
    """One round's calls, split: those an Action runs, and the rest (generate_image)."""

    runnable: tuple[ToolCall, ...]
    others: tuple[ToolCall, ...]


def split_calls(calls: Sequence[ToolCall], actions: Mapping[str, Action]) -> RoundCalls:
    return RoundCalls(
        tuple(c for c in calls if c.name in actions),
        tuple(c for c in calls if c.name not in actions),
    )


def progress_line(
    label: str, arguments: Mapping[str, object], doing: str = "", *, every: bool = False
) -> str:
    """`> 🔧 `server.tool` “first text argument” …` (or `> 🔎 Searching the web for “…” …`):
    what the reply shows while a tool runs. `every`: all the arguments, as compact JSON (a call
    waiting for its asker's approval shows what exactly it will do)."""
    if every and arguments:
        shown = json.dumps(dict(arguments), ensure_ascii=False, separators=(", ", ": "))
        shown = " ".join(shown.replace("`", "'").split())
        if len(shown) > ARGUMENTS_SHOWN:
            shown = shown[: ARGUMENTS_SHOWN - 1] + "…"
        return f"{PROGRESS}`{label}` {shown} …"
    shown = next((v for v in arguments.values() if isinstance(v, str) and v.strip()), "")
    shown = " ".join(shown.replace("`", "'").split())
    if len(shown) > ARGUMENT_SHOWN:
        shown = shown[: ARGUMENT_SHOWN - 1] + "…"
    what = f" “{shown}”" if shown else ""
    if doing:
        return f"{SEARCHING}{doing}{what} …"
    return f"{PROGRESS}`{label}`{what} …"


def outcome(result: ToolResult, seconds: float) -> str:
    """What the progress line gains when the call ends (it only grows, for append-only surfaces)."""
    if not result.is_error:
        return f" {result.summary or 'done'} ({seconds:.1f} s)"
    why = f": {result.note}" if result.note else ""
    return f" failed{why} ({seconds:.1f} s)"


def read_progress(line: str) -> tuple[str, str, str] | None:
    """A progress line's (title, status, details) for a surface that shows calls as cards:
    status `in_progress` (running, or waiting for its approval), `complete` or `error`; None
    when `line` is not one. A line cut short reads as in progress."""
    prefix = next((p for p in (PROGRESS, SEARCHING) if line.startswith(p)), None)
    if prefix is None:
        return None
    title, _, rest = line[len(prefix) :].partition(" …")
    title, rest = title.replace("`", "").strip(), rest.strip()
    if " failed" in f" {rest}" or rest.endswith(tuple(a.strip() for a in REFUSED_LINES)):
        return title, "error", rest
    if rest.endswith(")"):  # "done (0.4 s)", "3 results (0.8 s)"
        return title, "complete", rest
    return title, "in_progress", rest.rstrip(":")


def joined(before: str, after: str, sep: str = "\n\n") -> str:
    before, after = before.rstrip(), after.strip()
    return f"{before}{sep}{after}" if before and after else before or after


ASKING = " needs your approval:"
"""What a progress line gains while its call waits for the asker (Approve / Deny under it)."""
ANSWERED = {
    Answer.APPROVED: " approved,",
    Answer.DENIED: " denied.",
    Answer.EXPIRED: " no answer.",
    Answer.CLOSED: " not run: Parley is restarting.",
}
REFUSED_LINES = tuple(text for answer, text in ANSWERED.items() if answer is not Answer.APPROVED)
REFUSED = {
    Answer.DENIED: "The user denied this call: it did not run. Do not retry it unless they ask.",
    Answer.EXPIRED: "The user did not answer the approval request in time: the call did not run.",
    Answer.CLOSED: "Parley is restarting: the call did not run. Say so briefly.",
}

Approve = Callable[[Action, ToolCall], Awaitable[Answer]]


class RoundRunner:
    """Runs one round's calls for a turn and says in the reply what happens; a call to a tool
    that acts on the world waits for `approve` (None: such tools are not offered)."""

    def __init__(
        self,
        actions: Sequence[Action],
        clock: Clock,
        *,
        key: str = "",
        approve: Approve | None = None,
    ) -> None:
        self.actions = {a.spec.name: a for a in actions if approve is not None or not a.acts}
        self._clock = clock
        self._key = key
        self._approve = approve

    async def run(
        self, calls: RoundCalls, shown: str, show: Callable[[str], None]
    ) -> tuple[str, list[Message]]:
        """Run `calls.runnable` in order; returns the reply's text with their progress lines,
        and the tool messages answering every call of the round (`others` too)."""
        results: list[Message] = []
        for call in calls.runnable:
            action = self.actions[call.name]
            # One block of progress lines while the model writes nothing between its calls.
            after_progress = shown.rsplit("\n", 1)[-1].startswith((PROGRESS, SEARCHING))
            asks = action.acts and self._approve is not None
            line = progress_line(action.label, call.arguments, action.doing, every=asks)
            shown = joined(shown, line, "\n" if after_progress else "\n\n")
            show(shown)
            answer = Answer.APPROVED
            if action.acts and self._approve is not None:
                shown += ASKING
                show(shown)
                answer = await self._approve(action, call)
                shown += ANSWERED[answer]
                show(shown)
            started = self._clock.now()
            if answer is not Answer.APPROVED:
                result = ToolResult(REFUSED[answer], is_error=True)
            else:
                result = await self._run(action, call)
                shown += outcome(result, self._clock.now() - started)
                show(shown)
            seconds = self._clock.now() - started
            event(
                log,
                logging.INFO,
                "tool call",
                conversation_key=self._key,
                tool=action.label,
                call_id=call.id,
                outcome=answer.value
                if answer is not Answer.APPROVED
                else "error"
                if result.is_error
                else "ok",
                ms=int(seconds * 1000),
                chars=len(result.text),
            )
            text = f"Error: {result.text}" if result.is_error else result.text
            results.append(Message("tool", text, tool_call_id=call.id, is_error=result.is_error))
        for call in calls.others:
            results.append(Message("tool", DEFERRED_RESULT, tool_call_id=call.id))
        return shown, results

    async def _run(self, action: Action, call: ToolCall) -> ToolResult:
        try:
            return await action.run(call.arguments)
        except Exception as exc:  # a tool must never take the reply down with it
            log.exception("tool %s raised", action.label)
            return ToolResult(f"the tool failed: {type(exc).__name__}", True, "it crashed")
