"""/persona create|edit|list|delete|use|default: options in, the core's PersonaCommands out.

Everything goes in as options (no modal): `system_prompt` takes up to 6,000 characters,
Discord's limit for a string option. Who may do what is the core's (bot/commands/personas.py).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import discord
from discord import app_commands

from adapters.discord.access import Access
from adapters.discord.commands import complete_model, complete_persona
from adapters.discord.private import start
from adapters.discord.replies import answer, caller_and_place
from bot.app import App
from bot.commands import KEEP, PersonaCommands, PersonaEdit, Reply
from bot.engine.personas import PersonaSpec

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from adapters.discord.client import ParleyClient
    from bot.domain import Caller, ConversationKey

SYSTEM_PROMPT_MAX = 6000  # a Discord string option; the core takes up to 8,000
SETTINGS = {
    "system_prompt": "How the persona behaves (up to 6,000 characters)",
    "model": "A model from the catalog (default: the bot's default)",
    "temperature": "0 to 2",
    "top_p": "0 to 1",
    "max_tokens": "Longest answer in tokens (up to the model's limit)",
    "tools": "Allowed tools, comma separated (e.g. generate_image), or none",
}
"""What /persona create and edit say of each setting (edit: what is left out keeps its value)."""


def split_tools(tools: str | None) -> tuple[str, ...] | None:
    """`generate_image, web` -> ("generate_image", "web"); "none" -> (); None: not given."""
    if tools is None:
        return None
    if tools.strip().lower() in ("", "none", "-"):
        return ()
    return tuple(t.strip() for t in tools.replace(" ", ",").split(",") if t.strip())


class Personas:
    def __init__(self, app: App, access: Access) -> None:
        self.app = app
        self.access = access
        self.commands = PersonaCommands(app.personas)

    def register(self, tree: app_commands.CommandTree[ParleyClient]) -> None:
        group = app_commands.Group(
            name="persona", description="Personas: a name, a system prompt and model settings"
        )

        @group.command(name="create", description="Create a persona (admins)")
        @app_commands.describe(name="1-32 letters, digits, - or _", **SETTINGS)
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
            await self.run(interaction, lambda who, where: self.commands.create(who, where, spec))

        @group.command(
            name="edit", description="Change a persona; options left out keep their value"
        )
        @app_commands.describe(name="The persona to change", **SETTINGS)
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
            given = split_tools(tools)
            change = PersonaEdit(
                system_prompt=KEEP if system_prompt is None else system_prompt,
                model=KEEP if model is None else model,
                temperature=KEEP if temperature is None else temperature,
                top_p=KEEP if top_p is None else top_p,
                max_tokens=KEEP if max_tokens is None else max_tokens,
                tools=KEEP if given is None else given,
            )
            await self.run(
                interaction, lambda who, where: self.commands.edit(who, where, name, change)
            )

        @group.command(name="list", description="This server's personas")
        async def list_(interaction: discord.Interaction[Any]) -> None:
            await self.run(interaction, self.commands.list)

        @group.command(name="delete", description="Delete a persona (admins)")
        @app_commands.describe(name="The persona to delete")
        async def delete(interaction: discord.Interaction[Any], name: str) -> None:
            await self.run(interaction, lambda who, where: self.commands.delete(who, where, name))

        @group.command(name="use", description="Use a persona in this conversation from now on")
        @app_commands.describe(name="A persona; leave empty to go back to the channel's default")
        async def use(interaction: discord.Interaction[Any], name: str | None = None) -> None:
            in_thread = not isinstance(interaction.channel, discord.TextChannel)
            await self.run(
                interaction,
                lambda who, where: self.commands.use(
                    who, where, name or None, in_conversation=in_thread
                ),
            )

        @group.command(name="default", description="Set this channel's default persona (admins)")
        @app_commands.describe(name="A persona; leave empty to clear the channel's default")
        async def default(interaction: discord.Interaction[Any], name: str | None = None) -> None:
            await self.run(
                interaction, lambda who, where: self.commands.default(who, where, name or None)
            )

        create.autocomplete("model")(complete_model)
        edit.autocomplete("model")(complete_model)
        edit.autocomplete("name")(complete_persona)
        delete.autocomplete("name")(complete_persona)
        use.autocomplete("name")(complete_persona)
        default.autocomplete("name")(complete_persona)
        tree.add_command(group)

    async def run(
        self,
        interaction: discord.Interaction[Any],
        handler: Callable[[Caller, ConversationKey], Awaitable[Reply]],
    ) -> None:
        await start(interaction)
        await answer(interaction, await handler(*caller_and_place(self.access, interaction)))
