"""ChatEngine: request -> history -> LLM stream -> ReplyStreamer -> store.

One reply at a time per conversation (later messages wait their turn, in order). The user turn is
stored before the stream starts, the assistant turn as `streaming` beside it, and the assistant turn
is finished when the stream ends, whatever the reason, so a crash leaves a row that the next start
marks interrupted.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from enum import StrEnum

from bot.catalog import Catalog, ModelEntry, ModelNotAllowed, UnknownModel
from bot.clock import SYSTEM_CLOCK, Clock
from bot.domain import ChatRequest, ConversationKey
from bot.engine.admission import FINISH_MODERATION, Admission, Refused
from bot.engine.history import PromptTooLong, assemble, estimate_tokens, turns_before
from bot.engine.keeper import TURN_LEASE_SECONDS, TurnKeeper
from bot.engine.moderation import Moderator
from bot.engine.personas import PersonaError, PersonaService, validate_parameters
from bot.engine.streaming import ReplyStreamer
from bot.engine.tools import ToolTurn, offered_tools, run_tool_calls
from bot.engine.usage import ChatLimits
from bot.images.engine import ImageEngine
from bot.llm.router import LLMRouter, RoutedStream
from bot.llm.types import FinishReason, Message, ProviderError, ToolCall, Usage
from bot.ops.logs import event
from bot.ops.metrics import Metrics
from bot.ports import Control, ImageSurface, MessageRef, Surface
from bot.store import (
    ConversationStore,
    Persona,
    Store,
    StoreUnavailable,
    tenant_id_for,
    title_from_text,
)
from bot.store.records import (
    Conversation,
    InterruptedTurn,
    MessageStatus,
    StoredMessage,
    TurnProgress,
    TurnResult,
    UsageEntry,
)
from bot.store.turns_repo import FINISH_RESTART

log = logging.getLogger("parley.chat")

MAX_INPUT_CHARS = 32_000
_SAFETY_MARGIN_TOKENS = 64

NOTICE_STOPPED = "_(stopped)_"
NOTICE_LENGTH = "_(reply cut off: it reached the token limit)_"
NOTICE_SHUTDOWN = "_(reply cut off: Parley is restarting)_"
NOTICE_RESTARTED = "_(reply cut off by a restart)_"
NOTICE_BAD_TOOL_CALL = "_(the model tried to use a tool but its request was malformed)_"
REFUSAL_ARCHIVED = "This conversation is archived, so I no longer answer here. Start a new one."
REFUSAL_SHUTTING_DOWN = "Parley is restarting; please try again in a minute."
REFUSAL_CHANNEL_MODEL = (
    "Only admins can set a channel's model (the one new conversations there start with)."
)
REFUSAL_CONVERSATION_MODEL = (
    "Only the person who started this conversation, or an admin, can change its model."
)


STOP_FINISHED = "That reply has already finished."
STOP_INTERRUPTED = "That reply was cut off by a restart; it has already ended."
STOP_ABANDONED = "That reply was cut off by a restart; Parley is closing it now."


def why_not_running(turn: StoredMessage) -> str:
    """What Stop says about a reply this process is not running (after StopResult.NOT_RUNNING)."""
    if turn.status == "streaming":  # its process died; recovery has not taken it yet
        return STOP_ABANDONED
    if turn.finish_reason == FINISH_RESTART:  # not a Stop, which also ends `interrupted`
        return STOP_INTERRUPTED
    return STOP_FINISHED


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
    shutdown: bool = False


@dataclass(frozen=True, slots=True)
class _Plan:
    """What shapes one turn: the persona and the parameters it and the request chose."""

    entry: ModelEntry
    persona: Persona | None
    system: str | None
    max_tokens: int
    temperature: float | None
    top_p: float | None = None

    @property
    def budget(self) -> int:
        return self.entry.context_window - self.max_tokens - _SAFETY_MARGIN_TOKENS


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
        personas: PersonaService | None = None,
        moderator: Moderator | None = None,
        moderation_fail_closed: bool = False,
        limits: ChatLimits | None = None,
        max_prompt_chars: int = MAX_INPUT_CHARS,
        metrics: Metrics | None = None,
        images: ImageEngine | None = None,
        turn_lease: float = TURN_LEASE_SECONDS,
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
        self.personas = personas
        self.admission = Admission(
            store, limits or ChatLimits(), moderator, moderation_fail_closed, clock=clock
        )
        """The chat limits and moderation every turn passes (see _admit)."""
        self.max_prompt_chars = max_prompt_chars
        self.metrics = metrics or Metrics()
        self.images = images
        """The image core, for the generate_image tool (quotes only); None: no tools offered."""
        self._turns: set[asyncio.Future[None]] = set()
        self._accepting = True
        self.keeper = TurnKeeper(store, catalog, clock=clock, lease_seconds=turn_lease)
        """Leases and saved progress of the turns this process runs; recovery of the rest."""

    # -- public API --------------------------------------------------------------------------
    async def handle(
        self,
        request: ChatRequest,
        surface: Surface,
        *,
        persona: str | None = None,
        images: ImageSurface | None = None,
    ) -> TurnOutcome:
        """Answer one user message in its conversation, streaming onto `surface`.

        `persona` (e.g. `/chat persona:<name>`) applies a persona of the tenant to the
        conversation from this turn on. Refusals (empty, too long, archived, limits, moderation)
        are shown on `surface` and returned with status "error" before any provider call.
        `images` is where image quotes go when the model calls the generate_image tool (the
        same thread); without it no tools are offered. A store that cannot write is a refusal
        too (STORE_FAILING), whenever it shows.
        """
        try:
            return await self._handle(request, surface, persona, images)
        except StoreUnavailable as exc:
            return await self._refuse(surface, str(exc), request.key.platform, "store")

    async def _handle(
        self,
        request: ChatRequest,
        surface: Surface,
        persona: str | None,
        images: ImageSurface | None,
    ) -> TurnOutcome:
        platform = request.key.platform
        text = request.text.strip()
        if not self._accepting:  # at once, not after the conversation's running reply (_admit)
            return await self._refuse(surface, REFUSAL_SHUTTING_DOWN, platform, "shutdown")
        if not text:
            return await self._refuse(surface, "Say something and I'll answer.", platform, "empty")
        if len(text) > self.max_prompt_chars:
            return await self._refuse(
                surface,
                f"That message is {len(text):,} characters; the limit is"
                f" {self.max_prompt_chars:,}.",
                platform,
                "too_long",
            )
        with self._conversation_lock(request.key) as lock:
            async with lock:
                existing = await self.store.get_conversation(request.key)
                refused_turn = await self._admit(
                    surface,
                    platform,
                    archived=existing is not None and existing.archived,
                    tenant_id=tenant_id_for(request.key),
                    user_id=request.user_id,
                )
                if refused_turn is not None:
                    return refused_turn
                conversation = await self.store.ensure_conversation(
                    request.key, request.user_id, title_from_text(text)
                )
                if not conversation.title:
                    await ConversationStore(self.store).title_if_untitled(conversation.id, text)
                try:
                    conversation = await self._inherit_channel_model(request.key, conversation)
                    conversation = await self._apply_persona(request.key, conversation, persona)
                    plan = await self._plan(request.key, conversation, request)
                except (UnknownModel, PersonaError) as exc:
                    return await self._refuse(surface, str(exc), platform, "invalid")
                # Fail before storing anything when the message alone cannot fit.
                if (too_long := await self._unfit(surface, platform, plan, text)) is not None:
                    return too_long
                user_message = await self.store.add_message(
                    conversation.id, "user", text, user_id=request.user_id
                )
                refused_turn = await self._moderated(surface, conversation, user_message, plan)
                if refused_turn is not None:
                    return refused_turn
                return await self._answer(
                    conversation, user_message, plan, request.user_id, surface, images
                )

    async def regenerate(
        self,
        message_id: int,
        user_id: str,
        surface: Surface,
        *,
        images: ImageSurface | None = None,
    ) -> TurnOutcome:
        """A new answer to the same user turn, stored as a sibling of `message_id`."""
        try:
            return await self._regenerate(message_id, user_id, surface, images)
        except StoreUnavailable as exc:
            return await self._refuse(surface, str(exc), "", "store")

    async def _regenerate(
        self, message_id: int, user_id: str, surface: Surface, images: ImageSurface | None
    ) -> TurnOutcome:
        if not self._accepting:  # at once, not after the conversation's running reply (_admit)
            return await self._refuse(surface, REFUSAL_SHUTTING_DOWN, "", "shutdown")
        previous = await self.store.get_message(message_id)
        if previous is None or previous.parent_id is None:
            return await self._refuse(surface, "That reply no longer exists.")
        parent = await self.store.get_message(previous.parent_id)
        conversation = await self.store.get_conversation_by_id(previous.conversation_id)
        if parent is None or conversation is None:
            return await self._refuse(surface, "That conversation no longer exists.")
        if parent.user_id != user_id:
            return await self._refuse(surface, "Only the person who asked can regenerate this.")
        key = conversation.key
        with self._conversation_lock(key) as lock:
            async with lock:
                platform = conversation.platform
                refused_turn = await self._admit(
                    surface,
                    platform,
                    archived=conversation.archived,
                    tenant_id=conversation.tenant_id,
                    user_id=user_id,
                )
                if refused_turn is not None:
                    return refused_turn
                persona = await self._persona_of(key, conversation)
                try:  # the model that answered, else what the conversation would use now
                    try:
                        entry = self._model_for(previous.model, conversation, platform=platform)
                    except UnknownModel:
                        entry = self._model_for(None, conversation, persona, platform=platform)
                except UnknownModel as exc:
                    return await self._refuse(surface, str(exc), platform, "invalid")
                plan = self._plan_for(entry, persona, None)
                if (
                    too_long := await self._unfit(surface, platform, plan, parent.content)
                ) is not None:
                    return too_long
                refused_turn = await self._moderated(surface, conversation, parent, plan)
                if refused_turn is not None:
                    return refused_turn
                return await self._answer(conversation, parent, plan, user_id, surface, images)

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

    async def set_model(
        self,
        key: ConversationKey,
        user_id: str,
        spec: str | None,
        *,
        is_admin: bool = False,
        dm: bool = False,
    ) -> ModelEntry:
        """Choose the model for the conversation at `key` (None: back to the default).

        A channel's model (a key without a thread that is not a DM: `dm`) is what new
        conversations there start with, so only an admin sets it; a thread's or a DM's
        conversation, its owner or an admin. Nobody chooses a model without a price on a chat
        platform unless the operator allows it (Catalog.choose). Raises ModelNotAllowed or
        UnknownModel; their messages are for the user.
        """
        conversation = await self.store.get_conversation(key)
        if not is_admin:
            if not key.thread and not dm:
                raise ModelNotAllowed(REFUSAL_CHANNEL_MODEL)
            if conversation is not None and conversation.user_id != user_id:
                raise ModelNotAllowed(REFUSAL_CONVERSATION_MODEL)
        if spec:
            entry = self.catalog.choose(spec, platform=key.platform)
        else:
            entry = self.catalog.resolve(self.default_model)
        if conversation is None:
            conversation = await self.store.ensure_conversation(key, user_id, "")
        await self.store.set_conversation_model(conversation.id, entry.name if spec else None)
        return entry

    async def current_model(self, key: ConversationKey) -> ModelEntry:
        """The model the next turn at `key` would use (UnknownModel if it would be refused)."""
        conversation = await self.store.get_conversation(key)
        persona = await self._persona_of(key, conversation)
        return self._model_for(None, conversation, persona, platform=key.platform)

    def stop_accepting(self) -> None:
        """Graceful shutdown, step one: refuse new turns; running replies carry on."""
        self._accepting = False

    def interrupt_running(self) -> int:
        """Graceful shutdown, step two: cut off every running reply (stored as interrupted)."""
        for running in self._running.values():
            running.shutdown = True
            running.task.cancel()
        return len(self._running)

    async def recover(self) -> list[InterruptedTurn]:
        """Turns whose process is gone (a crash; their lease ran out) become interrupted, billed
        for what they generated; returns them for the adapters to finish on their platform."""
        return await self.keeper.recover()

    async def finish_interrupted(self, turn: InterruptedTurn, surface: Surface) -> None:
        """Show an interrupted turn as ended where it was shown: the text it had saved, a
        notice that a restart cut it off, and Regenerate in place of Stop."""
        streamer = ReplyStreamer(
            surface,
            clock=self._clock,
            final_controls=(Control("regenerate", str(turn.message.id), "Regenerate"),),
            marker=surface.limits.progress_marker,
            shown=turn.refs,
            key=str(turn.message.id),
        )
        try:
            await streamer.finish(turn.message.content, NOTICE_RESTARTED)
        finally:
            await streamer.close()

    async def wait_idle(self) -> None:
        """Wait until no reply is streaming or being stored (graceful shutdown).

        Cancelling this wait (a grace period running out) leaves the replies running.
        """
        while self._running or self._turns:
            waiting = {r.task for r in self._running.values()} | set(self._turns)
            await asyncio.wait(waiting)
        await self.keeper.close()

    # -- internals ---------------------------------------------------------------------------
    def _model_for(
        self,
        spec: str | None,
        conversation: Conversation | None,
        persona: Persona | None = None,
        *,
        platform: str,
    ) -> ModelEntry:
        """The request's model, else the conversation's, else the persona's, each someone's
        choice on `platform` (Catalog.choose: priced, unless allowed); else DEFAULT_MODEL, the
        operator's own, priced or not."""
        chosen = (
            spec
            or (conversation.model if conversation else None)
            or (persona.model if persona else None)
        )
        if not chosen:
            return self.catalog.resolve(self.default_model)
        return self.catalog.choose(chosen, platform=platform)

    async def _persona_of(
        self, key: ConversationKey, conversation: Conversation | None
    ) -> Persona | None:
        if self.personas is None:
            return None
        return await self.personas.for_conversation(key, conversation)

    async def _apply_persona(
        self, key: ConversationKey, conversation: Conversation, name: str | None
    ) -> Conversation:
        if not name:
            return conversation
        if self.personas is None:
            raise PersonaError("Personas are not available here.")
        await self.personas.use(key, conversation.user_id, name)
        updated = await self.store.get_conversation(key)
        assert updated is not None
        return updated

    async def _plan(
        self, key: ConversationKey, conversation: Conversation, request: ChatRequest
    ) -> _Plan:
        persona = await self._persona_of(key, conversation)
        options = request.options
        entry = self._model_for(options.model, conversation, persona, platform=key.platform)
        validate_parameters(entry, temperature=options.temperature, max_tokens=options.max_tokens)
        return self._plan_for(entry, persona, request)

    def _plan_for(
        self, entry: ModelEntry, persona: Persona | None, request: ChatRequest | None
    ) -> _Plan:
        options = request.options if request else None
        system = (
            (options.system if options else None)
            or (persona.system_prompt if persona else None)
            or self.system_prompt
        )
        wanted = (
            (options.max_tokens if options else None)
            or (persona.max_tokens if persona else None)
            or entry.default_max_tokens
        )
        temperature = options.temperature if options else None
        if temperature is None and persona is not None:
            temperature = persona.temperature
        # ChatOptions has no top_p yet: the persona's is the only one.
        top_p = persona.top_p if persona is not None else None
        return _Plan(
            entry, persona, system, min(wanted, entry.max_output_tokens), temperature, top_p
        )

    async def _inherit_channel_model(
        self, key: ConversationKey, conversation: Conversation
    ) -> Conversation:
        """A new thread starts with the model /model chose for its channel (kept from then
        on). UnknownModel when that model may no longer be chosen (say, now unpriced)."""
        if not key.thread or conversation.model is not None or conversation.message_count:
            return conversation
        channel = await self.store.get_conversation(
            ConversationKey(key.platform, key.tenant, key.channel)
        )
        if channel is None or not channel.model:
            return conversation
        entry = self.catalog.choose(channel.model, platform=key.platform)
        await self.store.set_conversation_model(conversation.id, entry.name)
        return dataclasses.replace(conversation, model=entry.name)

    # -- admission: every turn, new or regenerated, passes these in this order ---------------
    # shutdown, archived, chat limits (by _admit, before anything is stored); then the prompt's
    # size for the planned model (_unfit) and moderation of the user's message (_moderated).

    async def _admit(
        self, surface: Surface, platform: str, *, archived: bool, tenant_id: str, user_id: str
    ) -> TurnOutcome | None:
        """The refusal shown, or None when the turn may go on to planning."""
        if not self._accepting:
            return await self._refuse(surface, REFUSAL_SHUTTING_DOWN, platform, "shutdown")
        if archived:
            return await self._refuse(surface, REFUSAL_ARCHIVED, platform, "archived")
        refusal = await self.admission.over_limits(tenant_id, user_id)
        if refusal is not None:
            return await self._refuse(surface, refusal, platform, "limit")
        return None

    async def _unfit(
        self, surface: Surface, platform: str, plan: _Plan, text: str
    ) -> TurnOutcome | None:
        """Refused when the user's message alone does not fit the planned model's window."""
        try:
            assemble(plan.system, (), text, plan.budget)
        except PromptTooLong as exc:
            return await self._refuse(surface, f"Sorry: {exc}.", platform, "too_long")
        return None

    async def _moderated(
        self,
        surface: Surface,
        conversation: Conversation,
        user_message: StoredMessage,
        plan: _Plan,
    ) -> TurnOutcome | None:
        refused = await self.admission.moderate(conversation, user_message, plan.entry)
        if refused is None:
            return None
        return await self._refuse(
            surface, refused.text, conversation.platform, FINISH_MODERATION, refused
        )

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

    async def _refuse(
        self,
        surface: Surface,
        text: str,
        platform: str = "",
        reason: str = "refused",
        stored: Refused | None = None,
    ) -> TurnOutcome:
        await surface.notify(text)
        self.metrics.refusals.labels(platform or "-", reason).inc()
        return TurnOutcome(
            stored.message_id if stored else None,
            "",
            "error",
            FINISH_MODERATION if stored else None,
            None,
            None,
            error=text,
            conversation_id=stored.conversation_id if stored else None,
        )

    async def _answer(
        self,
        conversation: Conversation,
        user_message: StoredMessage,
        plan: _Plan,
        user_id: str,
        surface: Surface,
        images: ImageSurface | None,
    ) -> TurnOutcome:
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._turns.add(done)
        try:
            return await self._answer_turn(
                conversation, user_message, plan, user_id, surface, images
            )
        finally:
            self._turns.discard(done)
            done.set_result(None)

    async def _answer_turn(
        self,
        conversation: Conversation,
        user_message: StoredMessage,
        plan: _Plan,
        user_id: str,
        surface: Surface,
        images: ImageSurface | None,
    ) -> TurnOutcome:
        entry, system, max_tokens = plan.entry, plan.system, plan.max_tokens
        history = _in_context(await self.store.history(conversation.id), conversation)
        try:
            prompt = assemble(
                system, turns_before(history, user_message.id), user_message.content, plan.budget
            )
        except PromptTooLong as exc:
            return await self._refuse(surface, f"Sorry: {exc}.", conversation.platform, "too_long")

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
        state = _TurnState(started=self._clock.now())
        tools = ToolTurn(
            conversation.key,
            user_id,
            self.images,
            images,
            offered_tools(entry, plan.persona, self.images, images),
        )
        routed = self.router.stream(
            entry,
            prompt,
            max_tokens=max_tokens,
            temperature=plan.temperature,
            top_p=plan.top_p,
            tools=tools.offered,
        )

        async def pump() -> None:
            async for chunk in routed:
                if chunk.usage is not None:
                    state.usage = state.usage.merge(chunk.usage)
                if chunk.finish_reason is not None:
                    state.finish = chunk.finish_reason
                state.tool_calls += chunk.tool_calls
                if chunk.text:
                    if state.first_token_at is None:
                        state.first_token_at = self._clock.now()
                    state.text += chunk.text
                    streamer.update(state.text)

        def progress() -> TurnProgress:
            used = routed.entry
            return TurnProgress(
                assistant.id,
                state.text,
                tuple(streamer.refs),
                used.provider if used else None,
                used.name if used else None,
            )

        task = asyncio.create_task(pump(), name=f"reply-{assistant.id}")
        running = _Running(task, user_id)
        self._running[assistant.id] = running
        self.keeper.track(assistant.id, progress)
        notice: str | None = None
        error: str | None = None
        status: MessageStatus = "complete"
        finished: TurnResult | None = None
        try:
            try:
                await asyncio.wait({task})
            except asyncio.CancelledError:
                task.cancel()  # our caller is going away (shutdown): stop the provider too
                await asyncio.wait({task})
                raise
            finally:
                self._running.pop(assistant.id, None)
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
                    conversation_key=_key_text(conversation),
                    message_id=assistant.id,
                    after_output=bool(state.text),
                    error=str(failure),
                )
            elif state.tool_calls or state.finish is FinishReason.TOOL_CALLS:
                await self._after_tool_calls(state, tools)
            elif state.finish is FinishReason.LENGTH:
                notice = NOTICE_LENGTH
            # Stored before the final edit: whatever the user sees next (an export, /usage) must
            # already include this turn.
            finished = await self._finish_turn(
                conversation, assistant, user_id, entry, routed, state, status, prompt
            )
            refs = await streamer.finish(state.text, notice)
        finally:
            await streamer.close()
            if finished is None:  # cancelled or failed before the turn could be stored
                finished = await self._finish_turn(
                    conversation, assistant, user_id, entry, routed, state, status, prompt
                )
            self.metrics.observe_turn(conversation.platform, routed, streamer.stats, finished)
        assert finished is not None
        event(
            log,
            logging.INFO,
            "reply done",
            conversation=conversation.id,
            conversation_key=_key_text(conversation),
            message_id=assistant.id,
            model=finished.model,
            provider=routed.provider,
            status=status,
            finish=finished.finish_reason,
            chars=len(state.text),
            ttft_ms=state.ttft_ms,
            duration_ms=finished.duration_ms,
            prompt_tokens=finished.prompt_tokens,
            completion_tokens=finished.completion_tokens,
            cost_usd=str(finished.cost) if finished.cost is not None else None,
            fallback=routed.fallback_used,
            edits=streamer.stats.edits,
            rate_limited=streamer.stats.rate_limited,
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

    async def _after_tool_calls(self, state: _TurnState, tools: ToolTurn) -> None:
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
        routed: RoutedStream,
        state: _TurnState,
        status: MessageStatus,
        prompt: list[Message],
    ) -> TurnResult:
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
        )
        line = None
        if routed.entry is not None:
            line = UsageEntry(
                conversation.tenant_id, user_id, "chat", used.provider, used.name,
                usage.prompt_tokens or 0, usage.completion_tokens or 0, cost, conversation.id,
                assistant.id,
            )  # fmt: skip
        await self.keeper.finish(assistant.id, result, line)
        return result


def _in_context(messages: list[StoredMessage], conversation: Conversation) -> list[StoredMessage]:
    """Messages history may use: after the `/new` marker, without turns moderation refused."""
    start = conversation.context_start_id or 0
    refused = {m.parent_id for m in messages if m.finish_reason == FINISH_MODERATION}
    return [
        m
        for m in messages
        if m.id > start and m.id not in refused and m.finish_reason != FINISH_MODERATION
    ]


def _key_text(conversation: Conversation) -> str:
    return str(conversation.key)


@dataclass(slots=True)
class _TurnState:
    started: float
    text: str = ""
    usage: Usage = field(default_factory=Usage)
    finish: FinishReason | None = None
    first_token_at: float | None = None
    tool_calls: tuple[ToolCall, ...] = ()

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
