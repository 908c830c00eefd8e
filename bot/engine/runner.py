"""One answer, from the provider's first byte to the stored and billed turn.

The assistant turn is stored as `streaming` (owned and leased by this process: keeper.py)
before the provider is called; the stream is pumped into a ReplyStreamer on the surface, Stop
cancels the pump (running.py), and the turn is finished and billed whatever ends it: its
text, a stop, a provider error, tool calls, the token limit, or a shutdown.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

from bot.catalog import ModelEntry
from bot.clock import Clock
from bot.domain import Actor
from bot.engine.approvals import Answer, Approvals
from bot.engine.history import estimate_tokens, rounds_record, without_tools
from bot.engine.keeper import TurnKeeper
from bot.engine.planning import Plan
from bot.engine.rounds import (
    NOTICE_ROUNDS,
    TOOL_ROUNDS,
    Approve,
    RoundRunner,
    joined,
    split_calls,
)
from bot.engine.running import RunningTurns
from bot.engine.streaming import ReplyStreamer
from bot.engine.tools import ToolTurn, offered_tools, run_tool_calls
from bot.engine.turn_state import TurnState
from bot.images.engine import ImageEngine
from bot.llm.reasoning import excerpt, no_answer
from bot.llm.router import LLMRouter, RoutedStream
from bot.llm.types import FinishReason, Message, ProviderError, ToolCall
from bot.ops.logs import event
from bot.ops.metrics import Metrics
from bot.ports import Control, ImageSurface, MessageRef, Surface
from bot.store import Store
from bot.store.records import (
    Conversation,
    MessageStatus,
    StoredMessage,
    TurnProgress,
    TurnResult,
    UsageEntry,
)
from bot.tools import Action, Toolbox

log = logging.getLogger("parley.chat")

NOTICE_STOPPED = "_(stopped)_"
NOTICE_LENGTH = "_(reply cut off: it reached the token limit)_"
NOTICE_SHUTDOWN = "_(reply cut off: Parley is restarting)_"
NOTICE_BAD_TOOL_CALL = "_(the model tried to use a tool but its request was malformed)_"
REASONING_LABEL = "Reasoning"
"""Above the model's reasoning, folded, under an answer (SHOW_REASONING=summary); never stored."""
THINKING = "thinking… {seconds} s"
"""Where the reply will be, while a reasoning model thinks and has written no answer yet."""


@dataclass(frozen=True, slots=True)
class TurnOutcome:
    message_id: int | None
    text: str
    status: MessageStatus
    finish_reason: str | None
    model: str | None
    provider: str | None
    refs: tuple[MessageRef, ...] = ()
    error: str | None = None
    conversation_id: int | None = None


class TurnRunner:
    def __init__(
        self,
        store: Store,
        router: LLMRouter,
        keeper: TurnKeeper,
        running: RunningTurns,
        metrics: Metrics,
        *,
        images: ImageEngine | None,
        clock: Clock,
        toolbox: Toolbox | None = None,
        tool_rounds: int = TOOL_ROUNDS,
        approvals: Approvals | None = None,
    ) -> None:
        self.toolbox = toolbox
        self.approvals = approvals
        """Where a call to a tool that acts on the world waits for its asker (None: such
        tools are not offered)."""
        self.tool_rounds = tool_rounds
        self.store = store
        self.router = router
        self.keeper = keeper
        self.running = running
        self.metrics = metrics
        self.images = images
        self._clock = clock

    async def run(
        self,
        conversation: Conversation,
        user_message: StoredMessage,
        plan: Plan,
        prompt: list[Message],
        user_id: str,
        surface: Surface,
        images: ImageSurface | None,
    ) -> TurnOutcome:
        """Stream one answer to `user_message` onto `surface`, store it and bill it."""
        async with self.running.storing():
            return await self._run(
                conversation, user_message, plan, prompt, user_id, surface, images
            )

    async def _run(
        self,
        conversation: Conversation,
        user_message: StoredMessage,
        plan: Plan,
        prompt: list[Message],
        user_id: str,
        surface: Surface,
        images: ImageSurface | None,
    ) -> TurnOutcome:
        entry, max_tokens = plan.entry, plan.max_tokens

        # No provider until one answers: a turn cut off before that costs nothing (keeper).
        assistant = await self.store.add_message(
            conversation.id,
            "assistant",
            "",
            status="streaming",
            user_id=user_id,  # who asked for this answer: the messages-per-minute limit counts it
            parent_id=user_message.id,
            model=entry.name,
            owner=self.keeper.owner,
            lease=self.keeper.lease,
            prompt_tokens=sum(estimate_tokens(m.content) for m in prompt),
        )
        streamer = ReplyStreamer(
            surface,
            clock=self._clock,
            streaming_controls=(Control("stop", str(assistant.id), "Stop"),),
            final_controls=(Control("regenerate", str(assistant.id), "Regenerate"),),
            marker=surface.limits.progress_marker,
        )
        state = TurnState(started=self._clock.now())
        tools = ToolTurn(
            conversation.key,
            user_id,
            self.images,
            images,
            offered_tools(entry, plan.persona, self.images, images),
        )
        approve = None
        if self.approvals is not None:
            approve = self._approver(assistant.id, Actor.at(conversation.key, user_id), streamer)
        rounds = RoundRunner(
            self._actions(entry, plan), self._clock, key=str(conversation.key), approve=approve
        )
        offered = tools.offered + tuple(a.spec for a in rounds.actions.values())
        prompt = prompt if offered else without_tools(prompt)
        messages = list(prompt)
        state.asked = len(prompt)

        def stream(model: ModelEntry, *, fallback: bool = True) -> RoutedStream:
            """A round's stream: the first from the model's chain, later ones on the model that
            answered (`fallback=False`), each with the messages so far."""
            return self.router.stream(
                model, list(messages), max_tokens=max_tokens, temperature=plan.temperature,
                top_p=plan.top_p, tools=offered, fallback=fallback,
            )  # fmt: skip

        state.routed = stream(entry)

        def show(text: str) -> None:
            state.text = text
            streamer.update(text)

        async def pump() -> None:
            for number in range(self.tool_rounds + 1):
                await self._pump_round(state, streamer)
                calls = split_calls(state.round_calls, rounds.actions)
                state.tool_calls += calls.others
                if not calls.runnable:
                    return
                if number == self.tool_rounds:
                    state.capped = True
                    return
                used = state.routed.entry or entry
                state.close_round(used, messages)
                messages.append(Message("assistant", state.round_text, state.round_calls))
                state.before = joined(state.before, state.round_text)
                state.before, results = await rounds.run(calls, state.before, show)
                messages.extend(results)
                state.start_round()
                state.routed = stream(used, fallback=False)

        def progress() -> TurnProgress:
            used = state.routed.entry
            return TurnProgress(
                assistant.id,
                state.text,
                tuple(streamer.refs),
                used.provider if used else None,
                used.name if used else None,
            )

        task = asyncio.create_task(pump(), name=f"reply-{assistant.id}")
        self.keeper.track(assistant.id, progress)
        notice: str | None = None
        error: str | None = None
        status: MessageStatus = "complete"
        finished: TurnResult | None = None
        try:
            with self.running.track(assistant.id, task, user_id) as running:
                try:
                    await asyncio.wait({task})
                except asyncio.CancelledError:
                    task.cancel()  # our caller is going away (shutdown): stop the provider too
                    await asyncio.wait({task})
                    raise
                finally:
                    self.keeper.untrack(assistant.id)
            if task.cancelled():
                status, state.finish = "interrupted", FinishReason.CANCELLED
                notice = NOTICE_SHUTDOWN if running.shutdown else NOTICE_STOPPED
            elif (failure := task.exception()) is not None:
                if not isinstance(failure, ProviderError):
                    raise failure
                status, error = "error", failure.message
                state.finish = state.finish if state.finish else FinishReason.ERROR
                notice = _failure_notice(failure, state.text)
                event(
                    log,
                    logging.WARNING,
                    "reply failed",
                    conversation=conversation.id,
                    conversation_key=str(conversation.key),
                    message_id=assistant.id,
                    after_output=bool(state.text),
                    error=str(failure),
                )
            elif state.capped:
                notice = NOTICE_ROUNDS.format(rounds=self.tool_rounds)
            elif state.tool_calls or state.finish is FinishReason.TOOL_CALLS:
                await self._after_tool_calls(state, tools)
            elif not state.round_text.strip():
                cut = state.finish is FinishReason.LENGTH
                notice = f"_({no_answer(reasoned=state.reasoned, cut=cut)})_"
            elif state.finish is FinishReason.LENGTH:
                notice = NOTICE_LENGTH
            if plan.show_reasoning and state.reasoning.strip():
                aside = surface.fold(REASONING_LABEL, excerpt(state.reasoning))
                notice = f"{notice}\n\n{aside}" if notice else aside
            if plan.notes:
                files = "\n".join(f"_📎 {note}_" for note in plan.notes)
                notice = f"{notice}\n\n{files}" if notice else files
            # Stored before the final edit: whatever the user sees next (an export, /usage) must
            # already include this turn.
            finished = await self._finish_turn(
                conversation, assistant, user_id, entry, state, status, messages
            )
            refs = await streamer.finish(state.text, notice)
        finally:
            await streamer.close()
            if finished is None:  # cancelled or failed before the turn could be stored
                finished = await self._finish_turn(
                    conversation, assistant, user_id, entry, state, status, messages
                )
            self.metrics.observe_turn(conversation.platform, state.routed, streamer.stats, finished)
        assert finished is not None
        event(
            log,
            logging.INFO,
            "reply done",
            conversation=conversation.id,
            conversation_key=str(conversation.key),
            message_id=assistant.id,
            model=finished.model,
            provider=state.routed.provider,
            status=status,
            finish=finished.finish_reason,
            chars=len(state.text),
            ttft_ms=state.ttft_ms,
            duration_ms=finished.duration_ms,
            prompt_tokens=finished.prompt_tokens,
            completion_tokens=finished.completion_tokens,
            cost_usd=str(finished.cost) if finished.cost is not None else None,
            fallback=state.routed.fallback_used,
            edits=streamer.stats.edits,
            rate_limited=streamer.stats.rate_limited,
        )
        return TurnOutcome(
            assistant.id,
            state.text,
            status,
            state.finish.value if state.finish else None,
            state.routed.entry.name if state.routed.entry else entry.name,
            state.routed.provider,
            tuple(refs),
            error,
            conversation.id,
        )

    def _actions(self, entry: ModelEntry, plan: Plan) -> list[Action]:
        """The toolbox's tools this turn may offer: the model calls tools, and the persona (if
        any) lists them."""
        if self.toolbox is None or not entry.capabilities.tools:
            return []
        allow = plan.persona.tools if plan.persona is not None else None
        return self.toolbox.actions(allow, acting=self.approvals is not None)

    def _approver(self, turn_id: int, asker: Actor, streamer: ReplyStreamer) -> Approve:
        """Approve / Deny (and Stop) under the reply while one call waits for its asker."""
        approvals = self.approvals
        assert approvals is not None
        ref = str(turn_id)
        stop = Control("stop", ref, "Stop")
        asking = (Control("approve", ref, "Approve"), Control("deny", ref, "Deny"), stop)

        async def approve(action: Action, call: ToolCall) -> Answer:
            streamer.set_controls(asking)
            try:
                return await approvals.ask(turn_id, asker)
            finally:
                streamer.set_controls((stop,))

        return approve

    async def _pump_round(self, state: TurnState, streamer: ReplyStreamer) -> None:
        """One provider stream into the reply: its text after what earlier rounds showed."""
        ticker: asyncio.Task[None] | None = None
        try:
            async for chunk in state.routed:
                if chunk.usage is not None:
                    state.usage = state.usage.merge(chunk.usage)
                if chunk.finish_reason is not None:
                    state.finish = chunk.finish_reason
                state.round_calls += chunk.tool_calls
                state.reasoning += chunk.reasoning
                if (chunk.reasoning or chunk.thinking) and not state.text and ticker is None:
                    state.reasoned = True
                    ticker = asyncio.create_task(self._thinking(streamer))
                if chunk.text:
                    if ticker is not None:
                        ticker.cancel()
                    if state.first_token_at is None:
                        state.first_token_at = self._clock.now()
                    state.round_text += chunk.text
                    state.text = joined(state.before, state.round_text)
                    streamer.update(state.text)
        finally:
            if ticker is not None:
                ticker.cancel()

    async def _thinking(self, streamer: ReplyStreamer) -> None:
        """While the model reasons with no text yet, the seconds it has been at it, each second."""
        since = self._clock.now()
        while True:
            streamer.think(THINKING.format(seconds=int(self._clock.now() - since)))
            await self._clock.sleep(1.0)

    async def _after_tool_calls(self, state: TurnState, tools: ToolTurn) -> None:
        """Act on the reply's tool calls (a quote at most, never a charge) and say so in it."""
        lines = await run_tool_calls(state.tool_calls, tools) if state.tool_calls else []
        if not lines:
            lines = [NOTICE_BAD_TOOL_CALL]
        state.text = "\n\n".join(part for part in (state.text.rstrip(), *lines) if part)
        state.finish = FinishReason.TOOL_CALLS

    async def _finish_turn(
        self,
        conversation: Conversation,
        assistant: StoredMessage,
        user_id: str,
        entry: ModelEntry,
        state: TurnState,
        status: MessageStatus,
        messages: list[Message],
    ) -> TurnResult:
        routed = state.routed
        used = routed.entry or entry
        state.close_round(used, messages)
        usage, cost = state.spent, state.cost
        now = self._clock.now()
        result = TurnResult(
            content=state.text,
            status=status,
            finish_reason=state.finish.value if state.finish else None,
            model=used.name,
            provider=routed.provider,
            prompt_tokens=usage.prompt_tokens,
            completion_tokens=usage.completion_tokens,
            cost=cost,
            ttft_ms=state.ttft_ms,
            duration_ms=int((now - state.started) * 1000),
            tool_rounds=rounds_record(messages[state.asked :], state.round_text),
        )
        line = None
        if state.answered:
            line = UsageEntry(
                conversation.tenant_id, user_id, "chat", used.provider, used.name,
                usage.prompt_tokens or 0, usage.completion_tokens or 0, cost, conversation.id,
                assistant.id,
            )  # fmt: skip
        await self.keeper.finish(assistant.id, result, line)
        return result


def _failure_notice(exc: ProviderError, partial: str) -> str:
    reason = exc.message if len(exc.message) <= 300 else exc.message[:297] + "…"
    if partial:
        return f"_(reply interrupted: {reason})_"
    return f"Sorry, I couldn't get an answer: {reason}"
