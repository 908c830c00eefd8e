"""Slash commands, built from the core's command table (bot.commands.table): each option's type,
range, choices and autocomplete come from its spec; a call runs the core handler and renders the
Reply privately. /chat, /image and /archive's `close_thread` are this platform's own steps.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, Literal, Optional

import discord
from discord import app_commands

from adapters.discord.images import Images
from adapters.discord.private import start
from adapters.discord.replies import announce, answer, caller_and_place, client_channel, tell
from adapters.discord.turns import PLATFORM, Asker, Turns, attachment_of, key_for
from bot.app import App
from bot.commands.access import Access
from bot.commands.chat import ChatCommands
from bot.commands.complete import choices
from bot.commands.conversations import THREAD_CLOSED, THREAD_OPEN
from bot.commands.reply import short
from bot.commands.spec import Args, Command, Here, Option
from bot.commands.table import CHAT, GROUPS, IMAGE, command_table
from bot.domain import Attachment
from bot.sorry import apologize

if TYPE_CHECKING:
    from adapters.discord.client import ParleyClient
    from bot.domain import ConversationKey

log = logging.getLogger("parley.discord")

PROMPT_ECHO_MAX = 1900

OnCall = Callable[[discord.Interaction[Any], Command, Args], Awaitable[None]]


def completer(kind: str) -> Any:
    """The autocomplete of a `kind` option: the core's choices for the place it is typed in."""

    async def complete(
        interaction: discord.Interaction[Any], current: str
    ) -> list[app_commands.Choice[str]]:
        app: App = interaction.client.app
        channel = interaction.channel
        place = key_for(channel, interaction.guild) if channel is not None else None
        found = await choices(
            kind, current, catalog=app.catalog, personas=app.personas, place=place
        )
        return [app_commands.Choice(name=label[:100], value=value) for label, value in found]

    return complete


def annotation(option: Option) -> Any:
    """The parameter type discord.py reads an option's kind, range and choices from."""
    kind: Any
    if option.choices:
        # An option that clears offers "none" beside its choices, as typed text does.
        kind = Literal[option.choices_on(PLATFORM) + (("none",) if option.clears else ())]
    elif option.kind in (int, float) and option.low is not None:
        kind = app_commands.Range[option.kind, option.low, option.high]
    elif option.kind in (int, float, bool):
        kind = option.kind
    elif option.kind is Attachment:
        kind = discord.Attachment
    else:
        kind = app_commands.Range[str, 1, option.high] if option.high else str
    return kind if option.required else Optional[kind]  # noqa: UP045 (Range is no type)


def slash(command: Command, on_call: OnCall, parent: app_commands.Group | None) -> Any:
    """`command` as a discord.py slash command whose callback calls `on_call` with its options."""
    options = command.options_on(PLATFORM)

    async def callback(interaction: discord.Interaction[Any], **given: Any) -> None:
        picked = {
            o.name: o.read(given[o.name], PLATFORM)
            for o in options
            if given.get(o.name) is not None
        }
        await on_call(interaction, command, picked)

    # discord.py reads the options from the callback's signature and its describe() attribute.
    empty = inspect.Parameter.empty
    callback.__signature__ = inspect.Signature(  # type: ignore[attr-defined]
        [
            inspect.Parameter("interaction", inspect.Parameter.POSITIONAL_OR_KEYWORD),
            *(
                inspect.Parameter(
                    o.name, inspect.Parameter.KEYWORD_ONLY, annotation=annotation(o),
                    default=empty if o.required else None,
                )
                for o in options
            ),
        ]
    )  # fmt: skip
    app_commands.describe(**{o.name: o.help_on(PLATFORM) for o in options})(callback)
    group, sub = command.words
    made: app_commands.Command[Any, ..., None] = app_commands.Command(
        name=sub or group,
        description=command.help_on(PLATFORM),
        callback=callback,
        parent=parent,
    )
    for option in options:
        if option.complete:
            made.autocomplete(option.name)(completer(option.complete))
    return made


def echo(prompt: str, asker: str) -> str:
    return f"**{asker}** asked: {short(prompt, PROMPT_ECHO_MAX)}"


class Commands:
    def __init__(self, app: App, turns: Turns, access: Access, images: Images) -> None:
        self.app = app
        self.turns = turns
        self.access = access
        self.images = images
        self.table = command_table(app)
        self.chat_options = ChatCommands(app.catalog, app.personas, app.store)

    def register(self, tree: app_commands.CommandTree[ParleyClient]) -> None:
        groups: dict[str, app_commands.Group] = {}
        own: dict[str, OnCall] = {"archive": self.archive, "chat": self.chat}
        own["image"] = self.images.image
        for command in (CHAT, IMAGE, *self.table.values()):
            group, sub = command.words
            parent = None
            if sub:
                if group not in groups:
                    groups[group] = app_commands.Group(name=group, description=GROUPS[group])
                    tree.add_command(groups[group])
                parent = groups[group]
            made = slash(command, own.get(command.name, self.answer), parent)
            if parent is not None:
                parent.add_command(made)
            else:
                tree.add_command(made)

    def here(self, interaction: discord.Interaction[Any]) -> Here:
        caller, place = caller_and_place(self.access, interaction)
        inside = interaction.guild_id is None or isinstance(interaction.channel, discord.Thread)
        return Here(caller, place, in_conversation=inside)

    async def answer(
        self, interaction: discord.Interaction[Any], command: Command, args: Args
    ) -> None:
        """A core command, answered privately."""
        assert command.run is not None
        await start(interaction)
        await answer(interaction, await command.run(self.here(interaction), args))

    async def turn_page(self, interaction: discord.Interaction[Any], page: int) -> None:
        """/history's Previous / Next: edit the same ephemeral message in place."""
        await interaction.response.defer()
        history = self.table["history"]
        assert history.run is not None
        try:
            await answer(interaction, await history.run(self.here(interaction), {"page": page}))
        except Exception as exc:  # a button is not under the tree's on_error
            await tell(interaction, apologize(log, exc, "history page %s", page))

    async def archive(
        self, interaction: discord.Interaction[Any], command: Command, args: Args
    ) -> None:
        assert command.run is not None
        await start(interaction)
        reply = await command.run(self.here(interaction), args)
        await announce(interaction, reply)  # before the thread closes: a post would reopen it
        said = await self._close(interaction, reply.target) if args.get("close_thread") else ""
        await answer(interaction, reply, suffix=said, announced=True)

    async def _close(
        self, interaction: discord.Interaction[Any], target: ConversationKey | None
    ) -> str:
        """Archive the conversation's Discord thread too; what to add to the reply."""
        thread = target.thread if target is not None else ""
        here = interaction.channel
        where = here if here and str(here.id) == thread else None
        if thread and where is None:
            where = client_channel(interaction, thread)
        if not isinstance(where, discord.Thread):
            return ""
        try:
            await where.edit(archived=True)
        except discord.HTTPException as exc:
            log.warning("could not archive thread %s: %s", where.id, exc)
            return THREAD_OPEN
        return THREAD_CLOSED

    async def chat(
        self, interaction: discord.Interaction[Any], command: Command, args: Args
    ) -> None:
        prompt, file = args["prompt"], args.get("file")
        files = (attachment_of(file),) if file is not None else ()
        asker = Asker(str(interaction.user.id), interaction.user.display_name, files)
        caller, place = caller_and_place(self.access, interaction)
        model, persona = await self.chat_options.options(
            caller, place, model=args.get("model"), persona=args.get("persona")
        )  # a refusal (the tree's on_error, privately) costs nothing but its line
        # The echo is the interaction's response itself: no defer and edit, so the interaction's
        # webhook keeps its calls for the reply's first message (a followup of it).
        await interaction.response.send_message(echo(prompt, asker.name))
        channel = interaction.channel
        if isinstance(channel, discord.TextChannel):
            await self.turns.in_new_thread(
                channel, prompt, asker, model=model, persona=persona, interaction=interaction
            )
        else:
            await self.turns.in_place(place, channel, prompt, asker, model=model, persona=persona)  # type: ignore[arg-type]
