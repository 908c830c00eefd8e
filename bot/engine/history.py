"""Prompt assembly under a token budget: the system prompt, then the newest whole turns that fit."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from bot.errors import UserError
from bot.llm.types import Message
from bot.store.records import StoredMessage

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
    user: str
    assistant: str | None


def turns_before(messages: Sequence[StoredMessage], user_message_id: int) -> list[Turn]:
    """Whole turns older than `user_message_id`: each user message with its latest visible answer.

    A regenerated answer is a sibling sharing its parent user message; the newest one wins.
    """
    answers: dict[int, str] = {}
    for message in messages:
        answered = message.role == "assistant" and message.parent_id is not None
        if answered and message.content and message.status != "streaming":
            assert message.parent_id is not None
            answers[message.parent_id] = message.content
    return [
        Turn(message.content, answers.get(message.id))
        for message in messages
        if message.role == "user" and message.id < user_message_id
    ]


def assemble(
    system: str | None, turns: Sequence[Turn], new_user: str, budget_tokens: int
) -> list[Message]:
    """Fit the system prompt, as many of the newest whole turns as fit, and the new message."""
    fixed = estimate_tokens(new_user) + (estimate_tokens(system) if system else 0)
    if fixed > budget_tokens:
        raise PromptTooLong(
            f"your message is too long for this model (about {estimate_tokens(new_user)} tokens;"
            f" it takes about {max(0, budget_tokens - (fixed - estimate_tokens(new_user)))})"
        )
    remaining = budget_tokens - fixed
    kept: list[Turn] = []
    for turn in reversed(turns):
        cost = estimate_tokens(turn.user) + (
            estimate_tokens(turn.assistant) if turn.assistant else 0
        )
        if cost > remaining:
            break
        remaining -= cost
        kept.append(turn)
    messages: list[Message] = [Message("system", system)] if system else []
    for turn in reversed(kept):
        messages.append(Message("user", turn.user))
        if turn.assistant:
            messages.append(Message("assistant", turn.assistant))
    messages.append(Message("user", new_user))
    return messages
