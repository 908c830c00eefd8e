"""What shapes a turn before any provider is called: the model, the persona, the parameters.

The request's model, else the conversation's, else the persona's, else the operator's default;
a new thread starts with its channel's model. Choosing a model is a rule too (`set_model`):
a channel's needs an admin, a conversation's its owner or an admin.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, replace

from bot.attachments import Read
from bot.catalog import Catalog, ModelEntry, ModelNotAllowed
from bot.domain import ChatRequest, ConversationKey
from bot.engine.personas import PersonaError, PersonaService, validate_parameters
from bot.store import Persona, Store
from bot.store.records import Conversation

SAFETY_MARGIN_TOKENS = 64
REFUSAL_CHANNEL_MODEL = (
    "Only admins can set a channel's model (the one new conversations there start with)."
)
REFUSAL_CONVERSATION_MODEL = (
    "Only the person who started this conversation, or an admin, can change its model."
)


@dataclass(frozen=True, slots=True)
class Plan:
    """What shapes one turn: the persona and the parameters it and the request chose."""

    entry: ModelEntry
    persona: Persona | None
    system: str | None
    max_tokens: int
    temperature: float | None
    top_p: float | None = None
    show_reasoning: bool = False
    """The answer ends with the model's reasoning, folded (SHOW_REASONING=summary, or the
    persona's own choice)."""
    notes: tuple[str, ...] = ()
    """Said under the answer: what was cut or could not be read of the turn's files."""

    @property
    def budget(self) -> int:
        """Prompt tokens the model's window leaves beside the answer."""
        return self.entry.context_window - self.max_tokens - SAFETY_MARGIN_TOKENS


VISION_FALLBACK = "{fallback} answered this one: {model} can't see images."
NO_VISION = (
    "{names}: {model} can't see images, so I answered from your words alone. Models that"
    " can: {models} (/model)."
)
VISION_LISTED = 6


class Planner:
    def __init__(
        self,
        store: Store,
        catalog: Catalog,
        personas: PersonaService | None,
        *,
        default_model: str,
        system_prompt: str | None,
        show_reasoning: str = "off",
        vision_fallback: str | None = None,
    ) -> None:
        self.store = store
        self.catalog = catalog
        self.personas = personas
        self.default_model = default_model
        self.system_prompt = system_prompt
        self.show_reasoning = show_reasoning
        self.vision_fallback = catalog.resolve(vision_fallback) if vision_fallback else None
        """VISION_FALLBACK_MODEL: answers a turn with pictures its model cannot see."""

    def with_files(self, plan: Plan, read: Read) -> Plan:
        """The plan for a turn that came with files: what could not be read said under the
        answer; pictures for a model that cannot see them answered by VISION_FALLBACK_MODEL
        (said so), else named as unseen with the models that would see them."""
        notes = read.problems
        if read.pictures and not plan.entry.capabilities.vision:
            fallback = self.vision_fallback
            if fallback is not None and fallback.capabilities.vision:
                said = VISION_FALLBACK.format(fallback=fallback.display, model=plan.entry.display)
                return replace(plan, entry=fallback, notes=(*notes, said))
            seeing = [e.name for e in self.catalog if e.capabilities.vision][:VISION_LISTED]
            names = ", ".join(p.name for p in read.pictures)
            notes = (*notes, NO_VISION.format(names=names, model=plan.entry.display,
                                              models=", ".join(seeing) or "none"))  # fmt: skip
        return replace(plan, notes=notes)

    def model_for(
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

    async def persona_of(
        self, key: ConversationKey, conversation: Conversation | None
    ) -> Persona | None:
        if self.personas is None:
            return None
        return await self.personas.for_conversation(key, conversation)

    async def apply_persona(
        self, key: ConversationKey, conversation: Conversation, name: str | None
    ) -> Conversation:
        """`/chat persona:<name>`: the conversation uses it from this turn on."""
        if not name:
            return conversation
        if self.personas is None:
            raise PersonaError("Personas are not available here.")
        await self.personas.use(key, conversation.user_id, name)
        updated = await self.store.get_conversation(key)
        assert updated is not None
        return updated

    async def plan(
        self, key: ConversationKey, conversation: Conversation, request: ChatRequest
    ) -> Plan:
        persona = await self.persona_of(key, conversation)
        options = request.options
        entry = self.model_for(options.model, conversation, persona, platform=key.platform)
        validate_parameters(entry, temperature=options.temperature, max_tokens=options.max_tokens)
        return self.plan_for(entry, persona, request)

    def plan_for(
        self, entry: ModelEntry, persona: Persona | None, request: ChatRequest | None
    ) -> Plan:
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
        reasoning = (persona.show_reasoning if persona else None) or self.show_reasoning
        return Plan(
            entry, persona, system, min(wanted, entry.max_output_tokens), temperature, top_p,
            show_reasoning=reasoning == "summary",
        )  # fmt: skip

    async def inherit_channel_model(
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
        persona = await self.persona_of(key, conversation)
        return self.model_for(None, conversation, persona, platform=key.platform)
