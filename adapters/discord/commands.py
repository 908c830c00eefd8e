"""Slash commands: /chat prompt [model] [persona] and /model [name], with autocomplete."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import discord
from discord import app_commands

from adapters.discord.access import Access
from adapters.discord.replies import answer, caller_and_place
from adapters.discord.turns import Asker, Turns, key_for
from bot.app import App
from bot.catalog import Catalog
from bot.commands.chat import ChatCommands
from bot.commands.models import ModelCommands, chosen

if TYPE_CHECKING:
    from adapters.discord.client import ParleyClient

log = logging.getLogger("parley.discord")

MAX_CHOICES = 25
PROMPT_ECHO_MAX = 1900


async def complete_model(
    interaction: discord.Interaction[Any], current: str
) -> list[app_commands.Choice[str]]:
    """Autocomplete of a model option: catalog names or display names containing the text."""
    catalog: Catalog = interaction.client.app.catalog
    needle = current.lower().strip()
    choices = []
    for entry in catalog:
        label = f"{entry.name} — {entry.display}"
        if needle in label.lower():
            choices.append(app_commands.Choice(name=label[:100], value=entry.name))
    return choices[:MAX_CHOICES]


async def complete_persona(
    interaction: discord.Interaction[Any], current: str
) -> list[app_commands.Choice[str]]:
    """The server's persona names containing what was typed (the tenant comes from the guild)."""
    app: App = interaction.client.app
    if app.personas is None or interaction.channel is None:
        return []
    needle = current.lower().strip()
    personas = await app.personas.list(key_for(interaction.channel, interaction.guild))
    return [app_commands.Choice(name=p.name, value=p.name) for p in personas if needle in p.name][
        :MAX_CHOICES
    ]


def echo(prompt: str, asker: str) -> str:
    text = " ".join(prompt.split())
    if len(text) > PROMPT_ECHO_MAX:
        text = text[: PROMPT_ECHO_MAX - 1] + "…"
    return f"**{asker}** asked: {text}"


class Commands:
    def __init__(self, app: App, turns: Turns, access: Access) -> None:
        self.app = app
        self.turns = turns
        self.access = access
        self.chat_options = ChatCommands(app.catalog, app.personas, app.store)
        self.models = ModelCommands(app.engine)

    def register(self, tree: app_commands.CommandTree[ParleyClient]) -> None:
        # Plain closures: discord.py reads parameters and annotations from the callback itself.
        @tree.command(name="chat", description="Ask Parley; the answer opens a thread")
        @app_commands.describe(
            prompt="What to ask",
            model="A model from the catalog (default: this channel's)",
            persona="A persona of this server (see /persona list)",
        )
        async def chat(
            interaction: discord.Interaction[Any],
            prompt: app_commands.Range[str, 1, 6000],
            model: str | None = None,
            persona: str | None = None,
        ) -> None:
            await self.chat(interaction, prompt, model, persona)

        @tree.command(name="model", description="Show or set the model for this thread or channel")
        @app_commands.describe(
            name="A model from the catalog (default: back to the default); empty: show the current"
        )
        async def model(interaction: discord.Interaction[Any], name: str | None = None) -> None:
            await self.model(interaction, name)

        chat.autocomplete("model")(complete_model)
        chat.autocomplete("persona")(complete_persona)
        model.autocomplete("name")(complete_model)

    async def chat(
        self,
        interaction: discord.Interaction[Any],
        prompt: str,
        model: str | None = None,
        persona: str | None = None,
    ) -> None:
        await interaction.response.defer(thinking=True)
        asker = Asker(str(interaction.user.id), interaction.user.display_name)
        caller, place = caller_and_place(self.access, interaction)
        model, persona = await self.chat_options.options(
            caller, place, model=model, persona=persona
        )  # a refusal (the tree's on_error) costs nothing but its line
        await interaction.edit_original_response(content=echo(prompt, asker.name))
        channel = interaction.channel
        if isinstance(channel, discord.TextChannel):
            await self.turns.in_new_thread(
                channel, prompt, asker, model=model, persona=persona, interaction=interaction
            )
        else:
            await self.turns.in_place(place, channel, prompt, asker, model=model, persona=persona)  # type: ignore[arg-type]

    async def model(self, interaction: discord.Interaction[Any], name: str | None = None) -> None:
        await interaction.response.defer(ephemeral=True, thinking=True)
        caller, place = caller_and_place(self.access, interaction)
        dm = interaction.guild_id is None
        if name:
            reply = await self.models.set(caller, place, chosen(name), in_conversation=dm)
        else:
            reply = await self.models.show(caller, place, in_conversation=dm)
        await answer(interaction, reply)
