"""/persona list|create|edit|delete|use|default: the rules and the words, for every platform.

Admins create, edit, delete and set a channel's default; anyone lists, and a conversation's
owner (or an admin) applies one to it. The admin check comes before any lookup, so a refusal
reads the same whatever the name (nobody learns which personas exist by editing them).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, fields
from enum import Enum

from bot.commands.reply import Bold, Channel, Code, Line, Reply, Said
from bot.commands.words import tenant_word
from bot.domain import Caller, ConversationKey
from bot.engine.personas import PersonaService, PersonaSpec, normalize_name
from bot.errors import NotAllowed, UserError
from bot.store import Persona

log = logging.getLogger("parley.commands")

UNAVAILABLE = "Personas are not available on this bot."
PREVIEW = 80
USE_WHERE = {
    "discord": "Use this inside a conversation's thread, or start one with `/chat persona:<name>`.",
    "slack": "In a channel, say `@Parley persona <name>` in the conversation's thread, or start"
    " one with `/chat persona:<name> <question>`.",
}


class Keep(Enum):
    KEEP = "keep"


KEEP = Keep.KEEP
"""An edit's field left out: the persona keeps its value."""


@dataclass(frozen=True, slots=True)
class PersonaEdit:
    """What `/persona edit` changes; None clears a setting, KEEP leaves it."""

    system_prompt: str | Keep = KEEP
    model: str | Keep | None = KEEP
    temperature: float | Keep | None = KEEP
    top_p: float | Keep | None = KEEP
    max_tokens: int | Keep | None = KEEP
    tools: tuple[str, ...] | Keep = KEEP
    show_reasoning: str | Keep | None = KEEP

    def applied_to(self, persona: Persona) -> PersonaSpec:
        values = {
            f.name: getattr(persona, f.name)
            if getattr(self, f.name) is KEEP
            else getattr(self, f.name)
            for f in fields(self)
        }
        return PersonaSpec(persona.name, **values)


def describe(persona: Persona) -> Line:
    """`**name** · model `m` · temperature 0.7 · …`: a persona on one line."""
    parts: list[str | Bold | Code] = [Bold(persona.name), " · "]
    parts += ["model ", Code(persona.model)] if persona.model else ["default model"]
    if persona.temperature is not None:
        parts.append(f" · temperature {persona.temperature:g}")
    if persona.top_p is not None:
        parts.append(f" · top_p {persona.top_p:g}")
    if persona.max_tokens is not None:
        parts.append(f" · max_tokens {persona.max_tokens:,}")
    if persona.tools:
        parts.append(" · tools " + ", ".join(persona.tools))
    if persona.show_reasoning:
        parts.append(f" · reasoning {persona.show_reasoning}")
    return tuple(parts)


class PersonaCommands:
    def __init__(self, service: PersonaService | None) -> None:
        self._service = service

    @property
    def service(self) -> PersonaService:
        if self._service is None:
            raise UserError(UNAVAILABLE, code="unavailable")
        return self._service

    async def list(self, caller: Caller, place: ConversationKey) -> Reply:
        service = self.service
        place = caller.check(place)
        personas = await service.list(place)
        if not personas:
            return Reply.say("No personas here yet. Admins add one with /persona create.")
        default = await service.channel_default(place)
        lines: list[Line] = [(Bold(f"Personas in this {tenant_word(caller.platform)}"),)]
        for persona in personas:
            mark = (" (this channel's default)",) if persona.name == default else ()
            lines.append(describe(persona) + mark)
            lines.append(("> ", Said(persona.system_prompt, PREVIEW)))
        return Reply(tuple(lines))

    async def create(self, caller: Caller, place: ConversationKey, spec: PersonaSpec) -> Reply:
        created = await self.service.create(
            caller.check(place), caller.user_id, spec, is_admin=caller.is_admin
        )
        log.info("persona created tenant=%s name=%s", place.tenant, created.name)
        return Reply(
            (
                ("Created ", *describe(created), "."),
                ("Use it with ", Code(f"/chat persona:{created.name}"), "."),
            )
        )

    async def edit(
        self, caller: Caller, place: ConversationKey, name: str, edit: PersonaEdit
    ) -> Reply:
        service = self.service
        if not caller.is_admin:  # before the lookup: the refusal says nothing about the name
            raise NotAllowed("Only admins can edit personas.")
        current = await service.get(caller.check(place), name)
        edited = await service.edit(place, edit.applied_to(current), is_admin=True)
        log.info("persona edited tenant=%s name=%s", place.tenant, edited.name)
        return Reply.say("Updated ", *describe(edited), ".")

    async def delete(self, caller: Caller, place: ConversationKey, name: str) -> Reply:
        await self.service.delete(caller.check(place), name, is_admin=caller.is_admin)
        log.info("persona deleted tenant=%s name=%s", place.tenant, name)
        return Reply.say("Deleted the persona ", Bold(normalize_name(name)), ".")

    async def use(
        self,
        caller: Caller,
        place: ConversationKey,
        name: str | None,
        *,
        in_conversation: bool = True,
    ) -> Reply:
        """Apply a persona to the conversation at `place` (None: the channel's default again).
        `in_conversation` False: the place holds threads rather than being a conversation."""
        service = self.service
        if not in_conversation:
            where = USE_WHERE.get(caller.platform, USE_WHERE["discord"])
            raise UserError(
                f"{where} Admins set a channel's default with /persona default.",
                code="not_a_conversation",
            )
        chosen = await service.use(
            caller.check(place), caller.user_id, name, is_admin=caller.is_admin
        )
        if chosen is None:
            return Reply.say("This conversation is back to the channel's default persona.")
        return Reply.say("This conversation now uses ", *describe(chosen), ".")

    async def default(self, caller: Caller, place: ConversationKey, name: str | None) -> Reply:
        """The default persona of the place's channel (a thread's: its parent's)."""
        chosen = await self.service.set_channel_default(
            caller.check(place), name, is_admin=caller.is_admin
        )
        if chosen is None:
            return Reply.say("This channel has no default persona now.")
        return Reply.say(
            "New conversations in ", Channel(place.channel), " use ", *describe(chosen),
            " by default.",
        )  # fmt: skip
