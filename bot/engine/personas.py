"""Personas (agents): per-tenant named system prompts and model parameters, and who may use them.

Admins create, edit and delete; anyone lists and applies one to a conversation (`/persona use`,
`/chat persona:<name>`); a channel can have a default. The engine asks `for_conversation` which
persona, if any, shapes a turn.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from bot.catalog import Catalog, ModelEntry, UnknownModel
from bot.domain import ConversationKey
from bot.engine.conversations import ARCHIVED
from bot.errors import NotAllowed, UserError
from bot.store import (
    Conversation,
    DuplicatePersona,
    Persona,
    PersonaFields,
    PersonaStore,
    Store,
    tenant_id_for,
    title_from_text,
)
from bot.text import clean_text
from bot.tools import Toolboxes

NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,31}$")
MAX_SYSTEM_PROMPT_CHARS = 8_000
TEMPERATURE_RANGE = (0.0, 2.0)
TOP_P_RANGE = (0.0, 1.0)


class PersonaError(UserError, ValueError):
    """A persona request that cannot be done; the message is safe to show the user."""

    code = "persona"


def normalize_name(name: str) -> str:
    cleaned = name.strip().lower()
    if not NAME.match(cleaned):
        raise PersonaError(
            f"{name.strip()[:40]!r} is not a persona name: use 1-32 letters, digits, - or _,"
            " starting with a letter or digit."
        )
    return cleaned


def validate_parameters(
    entry: ModelEntry,
    *,
    temperature: float | None = None,
    top_p: float | None = None,
    max_tokens: int | None = None,
) -> None:
    """Model parameters against the model's limits; raises PersonaError with a clear message."""
    low, high = TEMPERATURE_RANGE
    if temperature is not None and not low <= temperature <= high:
        raise PersonaError(
            f"temperature must be between {low:g} and {high:g} (got {temperature:g})."
        )
    low, high = TOP_P_RANGE
    if top_p is not None and not low <= top_p <= high:
        raise PersonaError(f"top_p must be between {low:g} and {high:g} (got {top_p:g}).")
    if max_tokens is not None and not 1 <= max_tokens <= entry.max_output_tokens:
        raise PersonaError(
            f"max_tokens must be between 1 and {entry.max_output_tokens:,} for {entry.name}"
            f" (got {max_tokens:,})."
        )


@dataclass(frozen=True, slots=True)
class PersonaSpec:
    """What an admin types into `/persona create|edit` (a modal or options)."""

    name: str
    system_prompt: str
    model: str | None = None
    temperature: float | None = None
    top_p: float | None = None
    max_tokens: int | None = None
    tools: tuple[str, ...] = ()
    show_reasoning: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "name", clean_text(self.name))
        object.__setattr__(self, "system_prompt", clean_text(self.system_prompt))


NOT_YOUR_CONVERSATION = (
    "Only the person who started this conversation, or an admin, can change its persona."
)


class PersonaService:
    """What the adapters call for `/persona`; every call is scoped to the tenant of `key`."""

    def __init__(self, store: Store, catalog: Catalog, *, default_model: str) -> None:
        self.store = store
        self.personas = PersonaStore(store)
        self.catalog = catalog
        self.default_model = default_model
        self.toolbox: Toolboxes | None = None
        """What a persona's tools are checked against (set once the tools are up)."""

    async def list(self, key: ConversationKey) -> list[Persona]:
        return await self.personas.list(tenant_id_for(key))

    async def get(self, key: ConversationKey, name: str) -> Persona:
        persona = await self.personas.get(tenant_id_for(key), normalize_name(name))
        if persona is None:
            raise PersonaError(
                f"There is no persona named {name.strip()!r} here. Try /persona list."
            )
        return persona

    async def create(
        self, key: ConversationKey, user_id: str, spec: PersonaSpec, *, is_admin: bool
    ) -> Persona:
        _require_admin(is_admin, "create personas")
        name, fields = self._checked(spec, key.platform)
        try:
            return await self.personas.create(key, name, fields, created_by=user_id)
        except DuplicatePersona:
            raise PersonaError(
                f"A persona named {name!r} already exists; edit it instead."
            ) from None

    async def edit(self, key: ConversationKey, spec: PersonaSpec, *, is_admin: bool) -> Persona:
        _require_admin(is_admin, "edit personas")
        name, fields = self._checked(spec, key.platform)
        persona = await self.personas.update(tenant_id_for(key), name, fields)
        if persona is None:
            raise PersonaError(f"There is no persona named {name!r} here. Try /persona list.")
        return persona

    async def delete(self, key: ConversationKey, name: str, *, is_admin: bool) -> None:
        _require_admin(is_admin, "delete personas")
        if not await self.personas.delete(tenant_id_for(key), normalize_name(name)):
            raise PersonaError(f"There is no persona named {name.strip()!r} here.")

    async def use(
        self, key: ConversationKey, user_id: str, name: str | None, *, is_admin: bool = False
    ) -> Persona | None:
        """Apply a persona to the conversation at `key` (None: back to the channel's default).

        A conversation's persona is its owner's to choose, or an admin's (as its model is)."""
        conversation = await self.store.get_conversation(key)
        if conversation is not None and conversation.user_id != user_id and not is_admin:
            raise PersonaError(NOT_YOUR_CONVERSATION)
        persona = await self.get(key, name) if name else None
        if conversation is not None and conversation.archived:
            raise PersonaError(ARCHIVED)
        if conversation is None:
            conversation = await self.store.ensure_conversation(key, user_id, title_from_text(""))
        await self.personas.set_conversation_persona(
            conversation.id, persona.name if persona else None
        )
        return persona

    async def set_channel_default(
        self, key: ConversationKey, name: str | None, *, is_admin: bool
    ) -> Persona | None:
        _require_admin(is_admin, "set a channel's default persona")
        persona = await self.get(key, name) if name else None
        await self.personas.set_channel_default(key, persona.name if persona else None)
        return persona

    async def channel_default(self, key: ConversationKey) -> str | None:
        """The name of the default persona of `key`'s channel, if it has one."""
        return await self.personas.channel_default(tenant_id_for(key), key.channel)

    async def for_conversation(
        self, key: ConversationKey, conversation: Conversation | None
    ) -> Persona | None:
        """The conversation's persona, else the channel's default; a deleted one is ignored."""
        tenant_id = tenant_id_for(key)
        name = conversation.persona if conversation else None
        if name is None:
            name = await self.personas.channel_default(tenant_id, key.channel)
        return None if name is None else await self.personas.get(tenant_id, name)

    def _checked(self, spec: PersonaSpec, platform: str) -> tuple[str, PersonaFields]:
        name = normalize_name(spec.name)
        prompt = spec.system_prompt.strip()
        if not prompt:
            raise PersonaError("A persona needs a system prompt.")
        if len(prompt) > MAX_SYSTEM_PROMPT_CHARS:
            raise PersonaError(
                f"The system prompt is {len(prompt):,} characters; the limit is"
                f" {MAX_SYSTEM_PROMPT_CHARS:,}."
            )
        try:  # a persona's model is an admin's choice: priced, unless the operator allows
            if spec.model:
                entry = self.catalog.choose(spec.model, platform=platform)
            else:
                entry = self.catalog.resolve(self.default_model)
        except UnknownModel as exc:
            raise PersonaError(str(exc)) from None
        validate_parameters(
            entry, temperature=spec.temperature, top_p=spec.top_p, max_tokens=spec.max_tokens
        )
        fields = PersonaFields(
            system_prompt=prompt,
            model=entry.name if spec.model else None,
            temperature=spec.temperature,
            top_p=spec.top_p,
            max_tokens=spec.max_tokens,
            tools=self._checked_tools(spec.tools),
            show_reasoning=spec.show_reasoning,
        )
        return name, fields

    def _checked_tools(self, tools: tuple[str, ...]) -> tuple[str, ...]:
        """The allow-list, refused when it names a tool nobody offers (a typo would silently
        leave the persona without it)."""
        names = tuple(sorted({t.strip() for t in tools if t.strip()}))
        if self.toolbox is None:
            unknown = [n for n in names if n != "generate_image"]
            offered = ["generate_image"]
        else:
            unknown = self.toolbox.unknown(names)
            offered = ["generate_image", *sorted(a.label for a in self.toolbox.actions(None))]
        if unknown:
            shown = ", ".join(f"`{n}`" for n in offered[:12])
            more = f" and {len(offered) - 12} more" if len(offered) > 12 else ""
            raise PersonaError(
                f"No such tool here: {', '.join(f'`{n}`' for n in unknown)}. Tools: {shown}{more}"
                " (a server's tools as `server.*`)."
            )
        return names


def _require_admin(is_admin: bool, what: str) -> None:
    if not is_admin:
        raise NotAllowed(f"Only admins can {what}.")
