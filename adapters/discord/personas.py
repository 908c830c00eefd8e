"""/persona create|edit|list|delete|use|default, through the core's PersonaService.

Admins (see `is_admin`) create, edit, delete and set channel defaults; anyone allowed lists
personas and applies one to a conversation of theirs. Everything goes in as options (no modal):
`system_prompt` takes up to 6,000 characters, Discord's limit for a string option.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import discord
from discord import app_commands

from adapters.discord.access import Access, is_admin
from adapters.discord.commands import model_choices, persona_choices
from adapters.discord.private import fit, say, start
from adapters.discord.turns import key_for
from bot.app import App
from bot.engine.personas import PersonaError, PersonaService, PersonaSpec
from bot.store import Persona, tenant_id_for

if TYPE_CHECKING:
    from adapters.discord.client import ParleyClient

log = logging.getLogger("parley.discord")

UNAVAILABLE = "Personas are not available on this bot."
PROMPT_PREVIEW = 80
SYSTEM_PROMPT_MAX = 6000  # a Discord string option; the core takes up to 8,000


def split_tools(tools: str | None) -> tuple[str, ...] | None:
    """`generate_image, web` -> ("generate_image", "web"); "none" -> (); None: not given."""
    if tools is None:
        return None
    if tools.strip().lower() in ("", "none", "-"):
        return ()
    return tuple(t.strip() for t in tools.replace(" ", ",").split(",") if t.strip())


def describe(persona: Persona) -> str:
    settings = [f"model `{persona.model}`" if persona.model else "default model"]
    if persona.temperature is not None:
        settings.append(f"temperature {persona.temperature:g}")
    if persona.top_p is not None:
        settings.append(f"top_p {persona.top_p:g}")
    if persona.max_tokens is not None:
        settings.append(f"max {persona.max_tokens:,} tokens")
    if persona.tools:
        settings.append("tools " + ", ".join(persona.tools))
    return f"**{persona.name}** · " + " · ".join(settings)


def preview(prompt: str) -> str:
    text = " ".join(prompt.split())
    return text if len(text) <= PROMPT_PREVIEW else text[: PROMPT_PREVIEW - 1] + "…"


class Personas:
    def __init__(self, app: App, access: Access) -> None:
        self.app = app
        self.access = access

    def register(self, tree: app_commands.CommandTree[ParleyClient]) -> None:
        group = app_commands.Group(
            name="persona", description="Personas: a name, a system prompt and model settings"
        )

        @group.command(name="create", description="Create a persona (admins)")
        @app_commands.describe(
            name="1-32 letters, digits, - or _",
            system_prompt="How the persona behaves (up to 6,000 characters)",
            model="A model from the catalog (default: the bot's default)",
            temperature="0 to 2",
            top_p="0 to 1",
            max_tokens="Longest answer in tokens (up to the model's limit)",
            tools="Allowed tools, comma separated (e.g. generate_image), or none",
        )
        async def create(
            interaction: discord.Interaction[Any],
            name: app_commands.Range[str, 1, 32],
            system_prompt: app_commands.Range[str, 1, SYSTEM_PROMPT_MAX],
            model: str | None = None,
            temperature: float | None = None,
            top_p: float | None = None,
            max_tokens: int | None = None,
            tools: str | None = None,
        ) -> None:
            spec = PersonaSpec(
                name,
                system_prompt,
                model or None,
                temperature,
                top_p,
                max_tokens,
                split_tools(tools) or (),
            )
            await self.create(interaction, spec)

        @group.command(
            name="edit", description="Change a persona; options left out keep their value"
        )
        @app_commands.describe(
            name="The persona to change",
            system_prompt="How the persona behaves (up to 6,000 characters)",
            model="A model from the catalog",
            temperature="0 to 2",
            top_p="0 to 1",
            max_tokens="Longest answer in tokens (up to the model's limit)",
            tools="Allowed tools, comma separated, or none",
        )
        async def edit(
            interaction: discord.Interaction[Any],
            name: app_commands.Range[str, 1, 32],
            system_prompt: app_commands.Range[str, 1, SYSTEM_PROMPT_MAX] | None = None,
            model: str | None = None,
            temperature: float | None = None,
            top_p: float | None = None,
            max_tokens: int | None = None,
            tools: str | None = None,
        ) -> None:
            changes: dict[str, Any] = {
                "system_prompt": system_prompt,
                "model": model,
                "temperature": temperature,
                "top_p": top_p,
                "max_tokens": max_tokens,
                "tools": split_tools(tools),
            }
            await self.edit(interaction, name, {k: v for k, v in changes.items() if v is not None})

        @group.command(name="list", description="This server's personas")
        async def list_(interaction: discord.Interaction[Any]) -> None:
            await self.list(interaction)

        @group.command(name="delete", description="Delete a persona (admins)")
        @app_commands.describe(name="The persona to delete")
        async def delete(interaction: discord.Interaction[Any], name: str) -> None:
            await self.delete(interaction, name)

        @group.command(name="use", description="Use a persona in this conversation from now on")
        @app_commands.describe(name="A persona; leave empty to go back to the channel's default")
        async def use(interaction: discord.Interaction[Any], name: str | None = None) -> None:
            await self.use(interaction, name)

        @group.command(name="default", description="Set this channel's default persona (admins)")
        @app_commands.describe(name="A persona; leave empty to clear the channel's default")
        async def default(interaction: discord.Interaction[Any], name: str | None = None) -> None:
            await self.default(interaction, name)

        create.autocomplete("model")(self.complete_model)
        edit.autocomplete("model")(self.complete_model)
        edit.autocomplete("name")(self.complete_persona)
        delete.autocomplete("name")(self.complete_persona)
        use.autocomplete("name")(self.complete_persona)
        default.autocomplete("name")(self.complete_persona)
        tree.add_command(group)

    async def complete_model(
        self, interaction: discord.Interaction[Any], current: str
    ) -> list[app_commands.Choice[str]]:
        return model_choices(self.app.catalog, current)

    async def complete_persona(
        self, interaction: discord.Interaction[Any], current: str
    ) -> list[app_commands.Choice[str]]:
        return await persona_choices(self.app, interaction, current)

    async def _begin(self, interaction: discord.Interaction[Any]) -> PersonaService | None:
        await start(interaction)
        if self.app.personas is None or interaction.channel is None:
            await say(interaction, UNAVAILABLE)
            return None
        return self.app.personas

    async def create(self, interaction: discord.Interaction[Any], spec: PersonaSpec) -> None:
        if (service := await self._begin(interaction)) is None:
            return
        key = key_for(interaction.channel, interaction.guild)
        try:
            persona = await service.create(
                key, str(interaction.user.id), spec, is_admin=is_admin(self.access, interaction)
            )
        except PersonaError as exc:
            await say(interaction, str(exc))
            return
        log.info("persona created tenant=%s name=%s", key.tenant, persona.name)
        await say(
            interaction,
            f"Created {describe(persona)}.\nUse it with `/chat persona:{persona.name}`.",
        )

    async def edit(
        self, interaction: discord.Interaction[Any], name: str, changes: dict[str, Any]
    ) -> None:
        if (service := await self._begin(interaction)) is None:
            return
        key = key_for(interaction.channel, interaction.guild)
        admin = is_admin(self.access, interaction)
        if not admin:  # before the lookup, so a refusal reads the same for every name
            await say(interaction, "Only admins can edit personas.")
            return
        try:
            current = await service.get(key, name)
            spec = PersonaSpec(
                current.name,
                changes.get("system_prompt", current.system_prompt),
                changes.get("model", current.model),
                changes.get("temperature", current.temperature),
                changes.get("top_p", current.top_p),
                changes.get("max_tokens", current.max_tokens),
                changes.get("tools", current.tools),
            )
            persona = await service.edit(key, spec, is_admin=admin)
        except PersonaError as exc:
            await say(interaction, str(exc))
            return
        log.info("persona edited tenant=%s name=%s", key.tenant, persona.name)
        await say(interaction, f"Updated {describe(persona)}.")

    async def list(self, interaction: discord.Interaction[Any]) -> None:
        if (service := await self._begin(interaction)) is None:
            return
        key = key_for(interaction.channel, interaction.guild)
        personas = await service.list(key)
        if not personas:
            await say(interaction, "No personas here yet. Admins can add one with /persona create.")
            return
        default = await service.personas.channel_default(tenant_id_for(key), key.channel)
        lines = ["**Personas in this server**"]
        for persona in personas:
            mark = " (this channel's default)" if persona.name == default else ""
            lines.append(f"{describe(persona)}{mark}\n  {preview(persona.system_prompt)}")
        await say(interaction, fit("\n".join(lines)))

    async def delete(self, interaction: discord.Interaction[Any], name: str) -> None:
        if (service := await self._begin(interaction)) is None:
            return
        key = key_for(interaction.channel, interaction.guild)
        try:
            await service.delete(key, name, is_admin=is_admin(self.access, interaction))
        except PersonaError as exc:
            await say(interaction, str(exc))
            return
        log.info("persona deleted tenant=%s name=%s", key.tenant, name)
        await say(interaction, f"Deleted the persona **{name.strip().lower()}**.")

    async def use(self, interaction: discord.Interaction[Any], name: str | None) -> None:
        if (service := await self._begin(interaction)) is None:
            return
        channel = interaction.channel
        if isinstance(channel, discord.TextChannel):
            await say(
                interaction,
                "Use this inside a conversation's thread, or start one with"
                " `/chat persona:<name>`. Admins can set a channel default with /persona default.",
            )
            return
        key = key_for(channel, interaction.guild)
        user = str(interaction.user.id)
        try:
            persona = await service.use(
                key, user, name, is_admin=is_admin(self.access, interaction)
            )
        except PersonaError as exc:
            await say(interaction, str(exc))
            return
        if persona is None:
            await say(interaction, "This conversation is back to the channel's default persona.")
        else:
            await say(interaction, f"This conversation now uses {describe(persona)}.")

    async def default(self, interaction: discord.Interaction[Any], name: str | None) -> None:
        if (service := await self._begin(interaction)) is None:
            return
        key = key_for(interaction.channel, interaction.guild)  # in a thread: its parent channel
        try:
            persona = await service.set_channel_default(
                key, name, is_admin=is_admin(self.access, interaction)
            )
        except PersonaError as exc:
            await say(interaction, str(exc))
            return
        if persona is None:
            await say(interaction, "This channel has no default persona now.")
        else:
            await say(
                interaction,
                f"New conversations in <#{key.channel}> use {describe(persona)} by default.",
            )
