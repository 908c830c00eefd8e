"""ChatEngine: request -> history -> LLM stream -> ReplyStreamer -> store.

One reply at a time per conversation (later messages wait their turn, in order). The user turn is
stored before the stream starts, the assistant turn as `streaming` beside it, and the assistant turn
is finished when the stream ends, whatever the reason, so a crash leaves a row that the next start
marks interrupted.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from enum import StrEnum

from bot.catalog import Catalog, ModelEntry, UnknownModel
from bot.clock import SYSTEM_CLOCK, Clock
from bot.domain import ChatRequest, ConversationKey
from bot.engine.history import PromptTooLong, assemble, estimate_tokens, turns_before
from bot.engine.streaming import ReplyStreamer
from bot.llm.router import LLMRouter, RoutedStream
from bot.llm.types import FinishReason, Message, ProviderError, Usage
from bot.ports import Control, MessageRef, Surface
from bot.store import Store, title_from_text
from bot.store.records import Conversation, MessageStatus, StoredMessage, TurnResult

log = logging.getLogger("parley.chat")

MAX_INPUT_CHARS = 32_000
_SAFETY_MARGIN_TOKENS = 64

NOTICE_STOPPED = "_(stopped)_"
NOTICE_LENGTH = "_(reply cut off: it reached the token limit)_"


class StopResult(StrEnum):
    STOPPED = "stopped"
    NOT_YOURS = "not_yours"
    NOT_RUNNING = "not_running"


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


@dataclass(slots=True)
class _Running:
    task: asyncio.Task[None]
    user_id: str
    stopped: bool = False


class ChatEngine:
    def __init__(
        self,
        store: Store,
        router: LLMRouter,
        catalog: Catalog,
        *,
        default_model: str,
        system_prompt: str | None,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        self.store = store
        self.router = router
        self.catalog = catalog
        self.default_model = default_model
        self.system_prompt = system_prompt
        self._clock = clock
        self._locks: dict[ConversationKey, asyncio.Lock] = {}
        self._waiting: dict[ConversationKey, int] = {}
        self._running: dict[int, _Running] = {}

    # -- public API --------------------------------------------------------------------------
    async def handle(self, request: ChatRequest, surface: Surface) -> TurnOutcome:
        """Answer one user message in its conversation, streaming onto `surface`."""
        text = request.text.strip()
        if not text:
            return await self._refuse(surface, "Say something and I'll answer.")
        if len(text) > MAX_INPUT_CHARS:
            return await self._refuse(
                surface,
                f"That message is {len(text):,} characters; the limit is {MAX_INPUT_CHARS:,}.",
            )
        with self._conversation_lock(request.key) as lock:
            async with lock:
                conversation = await self.store.ensure_conversation(
                    request.key, request.user_id, title_from_text(text)
                )
                try:
                    entry = self._model_for(request.options.model, conversation)
                except UnknownModel as exc:
                    return await self._refuse(surface, str(exc))
                user_message = await self.store.add_message(
                    conversation.id, "user", text, user_id=request.user_id
                )
                return await self._answer(
                    conversation, user_message, entry, request.user_id, surface, request
                )

    async def regenerate(self, message_id: int, user_id: str, surface: Surface) -> TurnOutcome:
        """A new answer to the same user turn, stored as a sibling of `message_id`."""
        previous = await self.store.get_message(message_id)
        if previous is None or previous.parent_id is None:
            return await self._refuse(surface, "That reply no longer exists.")
        parent = await self.store.get_message(previous.parent_id)
        conversation = await self.store.get_conversation_by_id(previous.conversation_id)
        if parent is None or conversation is None:
            return await self._refuse(surface, "That conversation no longer exists.")
        if parent.user_id != user_id:
            return await self._refuse(surface, "Only the person who asked can regenerate this.")
        key = ConversationKey(
            conversation.platform,
            _external_tenant(conversation),
            conversation.channel_id,
            conversation.thread_id,
        )
        with self._conversation_lock(key) as lock:
            async with lock:
                try:
                    entry = self._model_for(previous.model, conversation)
                except UnknownModel:
                    entry = self._model_for(None, conversation)
                return await self._answer(conversation, parent, entry, user_id, surface, None)

    def stop(self, message_id: int, user_id: str) -> StopResult:
        running = self._running.get(message_id)
        if running is None:
            return StopResult.NOT_RUNNING
        if running.user_id != user_id:
            return StopResult.NOT_YOURS
        running.stopped = True
        running.task.cancel()
        return StopResult.STOPPED

    def running(self) -> list[int]:
        """Ids of the assistant turns streaming now."""
        return list(self._running)

    def is_busy(self, key: ConversationKey) -> bool:
        return self._waiting.get(key, 0) > 0

    async def set_model(self, key: ConversationKey, user_id: str, spec: str | None) -> ModelEntry:
        """Choose the model for one conversation (None: back to the default)."""
        entry = self.catalog.resolve(spec) if spec else self.catalog.resolve(self.default_model)
        conversation = await self.store.ensure_conversation(key, user_id, "")
        await self.store.set_conversation_model(conversation.id, entry.name if spec else None)
        return entry

    async def current_model(self, key: ConversationKey) -> ModelEntry:
        conversation = await self.store.get_conversation(key)
        return self._model_for(None, conversation)

    async def recover(self) -> list[StoredMessage]:
        """Turns left streaming by a crash become interrupted; returns them for the adapters."""
        interrupted = await self.store.recover_interrupted()
        for message in interrupted:
            log.warning(
                "turn interrupted by restart message_id=%s conversation_id=%s",
                message.id,
                message.conversation_id,
            )
        return interrupted

    async def wait_idle(self) -> None:
        """Wait until no reply is streaming (graceful shutdown)."""
        while self._running:
            await asyncio.gather(
                *(r.task for r in list(self._running.values())), return_exceptions=True
            )

    # -- internals ---------------------------------------------------------------------------
    def _model_for(self, spec: str | None, conversation: Conversation | None) -> ModelEntry:
        chosen = spec or (conversation.model if conversation else None) or self.default_model
        return self.catalog.resolve(chosen)

    @contextmanager
    def _conversation_lock(self, key: ConversationKey) -> Iterator[asyncio.Lock]:
        lock = self._locks.setdefault(key, asyncio.Lock())
        self._waiting[key] = self._waiting.get(key, 0) + 1
        try:
            yield lock
        finally:
            self._waiting[key] -= 1
            if not self._waiting[key]:
                del self._waiting[key]
                del self._locks[key]

    async def _refuse(self, surface: Surface, text: str) -> TurnOutcome:
        await surface.notify(text)
        return TurnOutcome(None, "", "error", None, None, None, error=text)

    async def _answer(
        self,
        conversation: Conversation,
        user_message: StoredMessage,
        entry: ModelEntry,
        user_id: str,
        surface: Surface,
        request: ChatRequest | None,
    ) -> TurnOutcome:
        options = request.options if request else None
        system = (options.system if options and options.system else None) or self.system_prompt
        history = await self.store.history(conversation.id)
        max_tokens = min(
            (options.max_tokens if options and options.max_tokens else entry.default_max_tokens),
            entry.max_output_tokens,
        )
        budget = entry.context_window - max_tokens - _SAFETY_MARGIN_TOKENS
        try:
            prompt = assemble(
                system, turns_before(history, user_message.id), user_message.content, budget
            )
        except PromptTooLong as exc:
            return await self._refuse(surface, f"Sorry: {exc}.")

        assistant = await self.store.add_message(
            conversation.id,
            "assistant",
            "",
            status="streaming",
            parent_id=user_message.id,
            model=entry.name,
            provider=entry.provider,
        )
        streamer = ReplyStreamer(
            surface,
            clock=self._clock,
            streaming_controls=(Control("stop", str(assistant.id), "Stop"),),
            final_controls=(Control("regenerate", str(assistant.id), "Regenerate"),),
            marker=surface.limits.progress_marker,
        )
        state = _TurnState(started=self._clock.now())
        routed = self.router.stream(
            entry,
            prompt,
            max_tokens=max_tokens,
            temperature=options.temperature if options else None,
        )

        async def pump() -> None:
            async for chunk in routed:
                if chunk.usage is not None:
                    state.usage = state.usage.merge(chunk.usage)
                if chunk.finish_reason is not None:
                    state.finish = chunk.finish_reason
                if chunk.text:
                    if state.first_token_at is None:
                        state.first_token_at = self._clock.now()
                    state.text += chunk.text
                    streamer.update(state.text)

        task = asyncio.create_task(pump(), name=f"reply-{assistant.id}")
        running = _Running(task, user_id)
        self._running[assistant.id] = running
        notice: str | None = None
        error: str | None = None
        status: MessageStatus = "complete"
        try:
            try:
                await asyncio.wait({task})
            except asyncio.CancelledError:
                task.cancel()  # our caller is going away (shutdown): stop the provider too
                await asyncio.wait({task})
                raise
            finally:
                self._running.pop(assistant.id, None)
            if task.cancelled():
                status, state.finish, notice = "interrupted", FinishReason.CANCELLED, NOTICE_STOPPED
            elif (failure := task.exception()) is not None:
                if not isinstance(failure, ProviderError):
                    raise failure
                status, error = "error", failure.message
                state.finish = state.finish if state.finish else FinishReason.ERROR
                notice = _failure_notice(failure, state.text)
                log.warning(
                    "reply failed conversation=%s message_id=%s after_output=%s error=%s",
                    conversation.id,
                    assistant.id,
                    bool(state.text),
                    failure,
                )
            elif state.finish is FinishReason.LENGTH:
                notice = NOTICE_LENGTH
            refs = await streamer.finish(state.text, notice)
        finally:
            await streamer.close()
            await self._finish_turn(
                conversation, assistant, user_id, entry, routed, state, status, prompt
            )
        log.info(
            "reply done conversation=%s message_id=%s model=%s provider=%s status=%s finish=%s "
            "chars=%d ttft_ms=%s",
            conversation.id,
            assistant.id,
            routed.entry.name if routed.entry else entry.name,
            routed.provider or "-",
            status,
            state.finish,
            len(state.text),
            state.ttft_ms,
        )
        return TurnOutcome(
            assistant.id,
            state.text,
            status,
            state.finish.value if state.finish else None,
            routed.entry.name if routed.entry else entry.name,
            routed.provider,
            tuple(refs),
            error,
            conversation.id,
        )

    async def _finish_turn(
        self,
        conversation: Conversation,
        assistant: StoredMessage,
        user_id: str,
        entry: ModelEntry,
        routed: RoutedStream,
        state: _TurnState,
        status: MessageStatus,
        prompt: list[Message],
    ) -> None:
        used = routed.entry or entry
        usage = state.usage
        if usage.prompt_tokens is None or usage.completion_tokens is None:
            # Interrupted streams often never send their usage: bill by estimate.
            estimated = Usage(
                prompt_tokens=sum(estimate_tokens(m.content) for m in prompt),
                completion_tokens=estimate_tokens(state.text) if state.text else 0,
            )
            usage = estimated.merge(usage) if routed.entry else Usage(0, 0)
        cost = used.cost(usage)
        now = self._clock.now()
        await self.store.finish_message(
            assistant.id,
            TurnResult(
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
            ),
        )
        if routed.entry is not None:
            await self.store.record_usage(
                tenant_id=conversation.tenant_id,
                user_id=user_id,
                kind="chat",
                provider=used.provider,
                model=used.name,
                prompt_tokens=usage.prompt_tokens or 0,
                completion_tokens=usage.completion_tokens or 0,
                cost=cost,
                conversation_id=conversation.id,
                message_id=assistant.id,
            )


@dataclass(slots=True)
class _TurnState:
    started: float
    text: str = ""
    usage: Usage = field(default_factory=Usage)
    finish: FinishReason | None = None
    first_token_at: float | None = None

    @property
    def ttft_ms(self) -> int | None:
        if self.first_token_at is None:
            return None
        return int((self.first_token_at - self.started) * 1000)


def _failure_notice(exc: ProviderError, partial: str) -> str:
    reason = exc.message if len(exc.message) <= 300 else exc.message[:297] + "…"
    if partial:
        return f"_(reply interrupted: {reason})_"
    return f"Sorry, I couldn't get an answer: {reason}"


def _external_tenant(conversation: Conversation) -> str:
    prefix = f"{conversation.platform}:"
    tenant = conversation.tenant_id
    return tenant[len(prefix) :] if tenant.startswith(prefix) else tenant
