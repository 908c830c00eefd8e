"""Prompt assembly under a token budget: the system prompt, then the newest whole turns that fit."""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from bot.attachments import stored
from bot.errors import UserError
from bot.llm.types import Message, ToolCall
from bot.pictures import IMAGE_TOKENS
from bot.store.records import StoredMessage

log = logging.getLogger("parley.history")

RESULT_KEPT = 4_000
"""Characters of one tool result an answer keeps for later turns (the model read up to 16,000)."""

_CHARS_PER_TOKEN = 4
_PER_MESSAGE_OVERHEAD = 4  # role markers and separators in every chat template


def estimate_tokens(text: str) -> int:
    """A deliberately generous estimate (~4 characters a token) that needs no tokenizer download."""
    return len(text) // _CHARS_PER_TOKEN + _PER_MESSAGE_OVERHEAD


class PromptTooLong(UserError, ValueError):
    """The newest message alone does not fit in the model's context."""

    code = "prompt_too_long"


@dataclass(frozen=True, slots=True)
class Turn:
    user: str | Message
    assistant: str | None
    tools: tuple[Message, ...] = ()
    """The answer's rounds of tool calls and results, before its final text."""


def user_turn(message: StoredMessage) -> str | Message:
    """A user message as the model reads it: the text of its files (if any), then its words;
    a Message when it has pictures (for a model that sees; the router drops them for one that
    doesn't)."""
    kept = stored(message.attachments)
    text, images = kept.told(message.content), kept.images
    return Message("user", text, images=images) if images else text


def turns_before(messages: Sequence[StoredMessage], user_message_id: int) -> list[Turn]:
    """Whole turns older than `user_message_id`: each user message with its latest visible answer.

    A regenerated answer is a sibling sharing its parent user message; the newest one wins.
    """
    answers: dict[int, StoredMessage] = {}
    for message in messages:
        answered = message.role == "assistant" and message.parent_id is not None
        if answered and message.content and message.status != "streaming":
            assert message.parent_id is not None
            answers[message.parent_id] = message
    turns = []
    for message in messages:
        if message.role == "user" and message.id < user_message_id:
            answer, asked = answers.get(message.id), user_turn(message)
            if answer is None:
                turns.append(Turn(asked, None))
            elif answer.tool_rounds:
                tools, text = rounds_messages(answer.tool_rounds, answer.content)
                turns.append(Turn(asked, text, tools))
            else:
                turns.append(Turn(asked, answer.content))
    return turns


def rounds_record(rounds: Sequence[Message], answer: str) -> str | None:
    """What an answer keeps of its tool rounds (the assistant and tool messages after its
    prompt): the rounds whose every call has its result, results cut to RESULT_KEPT."""
    kept: list[dict[str, Any]] = []
    for message in rounds:
        if message.role == "assistant":
            calls = [{"id": c.id, "name": c.name, "arguments": dict(c.arguments)}
                     for c in message.tool_calls]  # fmt: skip
            kept.append({"text": message.content, "calls": calls, "results": []})
        elif message.role == "tool" and kept:
            content = message.content
            if len(content) > RESULT_KEPT:
                content = content[:RESULT_KEPT] + "\n[cut]"
            result = {"id": message.tool_call_id, "content": content, "error": message.is_error}
            kept[-1]["results"].append(result)
    whole = [r for r in kept if [c["id"] for c in r["calls"]] == [x["id"] for x in r["results"]]]
    if not whole:
        return None
    return json.dumps({"rounds": whole, "answer": answer}, ensure_ascii=False)


def rounds_messages(record: str, content: str) -> tuple[tuple[Message, ...], str]:
    """The messages a kept answer's tool rounds were, and its final text (`content`, as shown,
    when the record cannot be read)."""
    try:
        data = json.loads(record)
        messages: list[Message] = []
        for r in data["rounds"]:
            calls = tuple(ToolCall(c["id"], c["name"], c["arguments"]) for c in r["calls"])
            messages.append(Message("assistant", r["text"], calls))
            messages += [
                Message("tool", x["content"], tool_call_id=x["id"], is_error=x["error"])
                for x in r["results"]
            ]
        answer = str(data["answer"]) or "(no answer)"
    except (ValueError, KeyError, TypeError) as exc:
        log.warning("unreadable tool rounds ignored: %r", exc)
        return (), content
    return tuple(messages), answer


def without_tools(messages: Sequence[Message]) -> list[Message]:
    """A prompt for a turn that offers no tools: earlier answers' calls and results left out
    (some APIs refuse tool turns in a request that declares no tools)."""
    return [
        Message(m.role, m.content)
        for m in messages
        if m.role != "tool" and (m.content or not m.tool_calls)
    ]


def _said(user: str | Message) -> Message:
    return user if isinstance(user, Message) else Message("user", user)


def _cost(message: Message) -> int:
    return estimate_tokens(message.content) + IMAGE_TOKENS * len(message.images)


def assemble(
    system: str | None, turns: Sequence[Turn], new_user: str | Message, budget_tokens: int
) -> list[Message]:
    """Fit the system prompt, as many of the newest whole turns as fit, and the new message."""
    asked = _said(new_user)
    fixed = _cost(asked) + (estimate_tokens(system) if system else 0)
    if fixed > budget_tokens:
        raise PromptTooLong(
            f"your message is too long for this model (about {_cost(asked)} tokens;"
            f" it takes about {max(0, budget_tokens - (fixed - _cost(asked)))})"
        )
    remaining = budget_tokens - fixed
    kept: list[Turn] = []
    for turn in reversed(turns):
        cost = _cost(_said(turn.user)) + (estimate_tokens(turn.assistant) if turn.assistant else 0)
        cost += sum(estimate_tokens(m.content) + len(str(m.tool_calls)) // 4 for m in turn.tools)
        if cost > remaining:
            break
        remaining -= cost
        kept.append(turn)
    messages: list[Message] = [Message("system", system)] if system else []
    for turn in reversed(kept):
        messages.append(_said(turn.user))
        messages.extend(turn.tools)
        if turn.assistant:
            messages.append(Message("assistant", turn.assistant))
    messages.append(asked)
    return messages
