"""What one reply has done so far, round by round: its text, its calls, what it spent."""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal

from bot.catalog import ModelEntry
from bot.engine.history import estimate_tokens
from bot.llm.router import RoutedStream
from bot.llm.types import FinishReason, Message, ToolCall, Usage


@dataclass(slots=True)
class TurnState:
    started: float
    routed: RoutedStream = field(default_factory=RoutedStream)
    """The stream of the round running now (each tool round is a stream of its own)."""
    text: str = ""
    """What the reply shows: earlier rounds' text and progress lines, then this round's text."""
    before: str = ""
    asked: int = 0
    """How many messages the first round's prompt had (after them: the rounds' own)."""
    round_text: str = ""
    round_calls: tuple[ToolCall, ...] = ()
    usage: Usage = field(default_factory=Usage)
    """This round's usage as the provider reported it."""
    spent: Usage = field(default_factory=lambda: Usage(0, 0))
    """The rounds closed so far, summed (estimated where the provider did not say)."""
    cost: Decimal | None = Decimal(0)
    answered: bool = False
    """Some provider answered (else nothing is billed)."""
    round_closed: bool = False
    finish: FinishReason | None = None
    first_token_at: float | None = None
    tool_calls: tuple[ToolCall, ...] = ()
    """Calls no tool round ran (generate_image): acted on when the reply ends."""
    capped: bool = False
    reasoning: str = ""
    """What the model thought on the way: never stored as the answer, nor sent back to it."""
    reasoned: bool = False

    def close_round(self, used: ModelEntry, messages: list[Message]) -> None:
        """Add this round's usage to what the turn spent (once per round), estimated from the
        prompt and the text where the provider did not say (interrupted streams often don't)."""
        if self.round_closed:
            return
        self.round_closed = True
        if self.routed.entry is None:
            return  # no provider answered: nothing to bill for this round
        usage = self.usage
        if usage.prompt_tokens is None or usage.completion_tokens is None:
            calls = sum(len(str(c.arguments)) for c in self.round_calls)
            estimated = Usage(
                prompt_tokens=sum(estimate_tokens(m.content) for m in messages),
                completion_tokens=estimate_tokens(self.round_text) + calls // 4,
            )
            usage = estimated.merge(usage)
        self.answered = True
        self.spent = Usage(
            (self.spent.prompt_tokens or 0) + (usage.prompt_tokens or 0),
            (self.spent.completion_tokens or 0) + (usage.completion_tokens or 0),
        )
        round_cost = used.cost(usage)
        self.cost = None if self.cost is None or round_cost is None else self.cost + round_cost

    def start_round(self) -> None:
        self.usage, self.round_text, self.round_calls = Usage(), "", ()
        self.finish, self.round_closed = None, False

    @property
    def ttft_ms(self) -> int | None:
        if self.first_token_at is None:
            return None
        return int((self.first_token_at - self.started) * 1000)
