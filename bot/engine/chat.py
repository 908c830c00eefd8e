"""ChatEngine: request -> admission -> plan -> history -> the turn runner -> store.

One reply at a time per conversation (later messages wait their turn, in order). Every turn,
new or regenerated, passes one admission in one order (below). The user turn is stored before
the stream starts; the runner (runner.py) stores the assistant turn as `streaming` beside it
and finishes it whatever ends the stream, so a crash leaves a row the next start marks
interrupted. Planning is planning.py's, the running turns' registry running.py's.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator
from contextlib import contextmanager

from bot.attachments import AttachmentReader, bill_voice, files_only
from bot.catalog import Catalog, ModelEntry, UnknownModel
from bot.clock import SYSTEM_CLOCK, Clock
from bot.domain import ChatRequest, ConversationKey
from bot.engine.admission import FINISH_MODERATION, Admission, Refused
from bot.engine.approvals import APPROVAL_SECONDS, Approvals
from bot.engine.history import PromptTooLong, assemble, turns_before, user_turn
from bot.engine.keeper import TURN_LEASE_SECONDS, TurnKeeper
from bot.engine.moderation import Moderator
from bot.engine.personas import PersonaError, PersonaService
from bot.engine.planning import REFUSAL_CHANNEL_MODEL, REFUSAL_CONVERSATION_MODEL, Plan, Planner
from bot.engine.rounds import TOOL_ROUNDS
from bot.engine.runner import (
    NOTICE_BAD_TOOL_CALL,
    NOTICE_LENGTH,
    NOTICE_SHUTDOWN,
    NOTICE_STOPPED,
    TurnOutcome,
    TurnRunner,
)
from bot.engine.running import RunningTurns, StopResult, why_not_running
from bot.engine.streaming import ReplyStreamer
from bot.engine.usage import ChatLimits
from bot.images.engine import ImageEngine
from bot.llm.router import LLMRouter
from bot.ops.metrics import Metrics
from bot.ports import Control, ImageSurface, Surface
from bot.store import ConversationStore, Store, StoreUnavailable, tenant_id_for, title_from_text
from bot.store.records import Conversation, InterruptedTurn, StoredMessage
from bot.tools import Toolbox

__all__ = [
    "NOTICE_BAD_TOOL_CALL",
    "NOTICE_LENGTH",
    "NOTICE_SHUTDOWN",
    "NOTICE_STOPPED",
    "REFUSAL_CHANNEL_MODEL",
    "REFUSAL_CONVERSATION_MODEL",
    "ChatEngine",
    "StopResult",
    "TurnOutcome",
    "why_not_running",
]

log = logging.getLogger("parley.chat")

MAX_INPUT_CHARS = 32_000
NOTICE_RESTARTED = "_(reply cut off by a restart)_"
REFUSAL_ARCHIVED = "This conversation is archived, so I no longer answer here. Start a new one."
REFUSAL_SHUTTING_DOWN = "Parley is restarting; please try again in a minute."


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
        show_reasoning: str = "off",
        toolbox: Toolbox | None = None,
        tool_rounds: int = TOOL_ROUNDS,
        approval_seconds: float = APPROVAL_SECONDS,  # how long a tool call waits for its asker
        attachments: AttachmentReader | None = None,
        vision_fallback: str | None = None,  # VISION_FALLBACK_MODEL
    ) -> None:
        self.store = store
        self.router = router
        self.catalog = catalog
        self._clock = clock
        self._locks: dict[ConversationKey, asyncio.Lock] = {}
        self._waiting: dict[ConversationKey, int] = {}
        self.personas = personas
        self.planner = Planner(
            store, catalog, personas, default_model=default_model, system_prompt=system_prompt,
            show_reasoning=show_reasoning, vision_fallback=vision_fallback,
        )  # fmt: skip
        limits = limits or ChatLimits()  # and moderation: what every turn passes (see _admit)
        self.admission = Admission(store, limits, moderator, moderation_fail_closed, clock=clock)
        self.max_prompt_chars = max_prompt_chars
        self.attachments = attachments or AttachmentReader()
        self.metrics = metrics or Metrics()
        self.images = images
        """The image core, for the generate_image tool (quotes only); None: no tools offered."""
        self._accepting = True
        self.keeper = TurnKeeper(store, catalog, clock=clock, lease_seconds=turn_lease)
        """Leases and saved progress of the turns this process runs; recovery of the rest."""
        self.turns = RunningTurns()
        self.keeper.on_stop = self.turns.stop_requested  # a Stop pressed on another replica
        self.approvals = Approvals(approval_seconds, board=self.keeper)
        self.keeper.on_answer = self.approvals.answer_from_elsewhere
        self.runner = TurnRunner(
            store, router, self.keeper, self.turns, self.metrics, images=images, clock=clock,
            toolbox=toolbox, tool_rounds=tool_rounds, approvals=self.approvals,
        )  # fmt: skip

    @property
    def default_model(self) -> str:
        return self.planner.default_model

    @property
    def system_prompt(self) -> str | None:
        return self.planner.system_prompt

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
        text = request.text.strip() or files_only(request.attachments)
        if not self._accepting:  # at once, not after the conversation's running reply (_admit)
            return await self._refuse(surface, REFUSAL_SHUTTING_DOWN, platform, "shutdown")
        if not text:
            return await self._refuse(surface, "Say something and I'll answer.", platform, "empty")
        if len(text) > self.max_prompt_chars:
            limit = f"the limit is {self.max_prompt_chars:,}"
            said = f"That message is {len(text):,} characters; {limit}."
            return await self._refuse(surface, said, platform, "too_long")
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
                # One transaction fewer per turn where the conversation is there already (a
                # /chat's thread, a reply in one); under load each holds a pooled connection.
                conversation = existing or await self.store.ensure_conversation(
                    request.key, request.user_id, title_from_text(text)
                )
                if not conversation.title:
                    await ConversationStore(self.store).title_if_untitled(conversation.id, text)
                try:
                    conversation = await self.planner.inherit_channel_model(
                        request.key, conversation
                    )
                    conversation = await self.planner.apply_persona(
                        request.key, conversation, persona
                    )
                    plan = await self.planner.plan(request.key, conversation, request)
                except (UnknownModel, PersonaError) as exc:
                    return await self._refuse(surface, str(exc), platform, "invalid")
                # Fail before storing anything when the message alone cannot fit.
                if (too_long := await self._unfit(surface, platform, plan, text)) is not None:
                    return too_long
                read = await self.attachments.read(request.attachments, plan.budget)
                plan = self.planner.with_files(plan, read)
                user_message = await self.store.add_message(
                    conversation.id, "user", text, user_id=request.user_id, attachments=read.record
                )
                await bill_voice(self.store, read, conversation, request.user_id, user_message.id)
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
                persona = await self.planner.persona_of(key, conversation)
                try:  # the model that answered, else what the conversation would use now
                    try:
                        entry = self.planner.model_for(
                            previous.model, conversation, platform=platform
                        )
                    except UnknownModel:
                        entry = self.planner.model_for(
                            None, conversation, persona, platform=platform
                        )
                except UnknownModel as exc:
                    return await self._refuse(surface, str(exc), platform, "invalid")
                plan = self.planner.plan_for(entry, persona, None)
                if (
                    too_long := await self._unfit(surface, platform, plan, parent.content)
                ) is not None:
                    return too_long
                refused_turn = await self._moderated(surface, conversation, parent, plan)
                if refused_turn is not None:
                    return refused_turn
                return await self._answer(conversation, parent, plan, user_id, surface, images)

    def stop(self, message_id: int, user_id: str) -> StopResult:
        return self.turns.stop(message_id, user_id)

    def running(self) -> list[int]:
        """Ids of the assistant turns streaming now."""
        return self.turns.ids()

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
        """Planner.set_model: a channel's model needs an admin; a conversation's, its owner."""
        return await self.planner.set_model(key, user_id, spec, is_admin=is_admin, dm=dm)

    async def current_model(self, key: ConversationKey) -> ModelEntry:
        return await self.planner.current_model(key)

    def stop_accepting(self) -> None:
        """Graceful shutdown, step one: refuse new turns; running replies carry on."""
        self._accepting = False
        self.approvals.close()  # a tool call waiting for its asker is answered as not run

    def interrupt_running(self) -> int:
        """Graceful shutdown, step two: cut off every running reply (stored as interrupted)."""
        return self.turns.interrupt()

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
        await self.turns.wait_idle()
        await self.keeper.close()

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
        self, surface: Surface, platform: str, plan: Plan, text: str
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
        plan: Plan,
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
        plan: Plan,
        user_id: str,
        surface: Surface,
        images: ImageSurface | None,
    ) -> TurnOutcome:
        """The prompt (history within the model's window), then the runner answers."""
        history = _in_context(await self.store.history(conversation.id), conversation)
        try:
            prompt = assemble(
                plan.system,
                turns_before(history, user_message.id),
                user_turn(user_message),
                plan.budget,
            )
        except PromptTooLong as exc:
            return await self._refuse(surface, f"Sorry: {exc}.", conversation.platform, "too_long")
        return await self.runner.run(
            conversation, user_message, plan, prompt, user_id, surface, images
        )


def _in_context(messages: list[StoredMessage], conversation: Conversation) -> list[StoredMessage]:
    """Messages history may use: after the `/new` marker, without turns moderation refused."""
    start = conversation.context_start_id or 0
    refused = {m.parent_id for m in messages if m.finish_reason == FINISH_MODERATION}
    return [
        m
        for m in messages
        if m.id > start and m.id not in refused and m.finish_reason != FINISH_MODERATION
    ]
