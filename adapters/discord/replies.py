"""Command replies on Discord: who asks and from where in, the core's Reply out.

`caller_and_place` turns an interaction into the core's Caller and place; `answer` renders a
Reply into the deferred ephemeral response (text in Discord markdown within 2,000 characters,
saying so when cut; buttons as persistent components; a file as an attachment) and posts its
announcement in the conversation's thread. Refusals (UserError) and failures reach the user
through the tree's on_error (client.py), once.
"""

from __future__ import annotations

import contextlib
import io
import logging
from typing import Any

import discord
from discord import ui

from adapters.discord.access import is_admin
from adapters.discord.private import fit
from adapters.discord.turns import key_for
from adapters.discord.views import ReplyButton
from bot.commands.access import NOWHERE, Access
from bot.commands.conversations import EXPORT_FAILED, EXPORT_TOO_LARGE
from bot.commands.reply import Button, Reply, render_line
from bot.domain import Caller, ConversationKey
from bot.errors import UserError
from bot.markup import DISCORD, Markup, discord_place

log = logging.getLogger("parley.discord")


def caller_and_place(
    access: Access, interaction: discord.Interaction[Any]
) -> tuple[Caller, ConversationKey]:
    if interaction.channel is None:
        raise UserError(NOWHERE, code="nowhere")
    place = key_for(interaction.channel, interaction.guild)
    user = str(interaction.user.id)
    return Caller.at(place, user, is_admin=is_admin(access, interaction)), place


def markup(interaction: discord.Interaction[Any]) -> Markup:
    return DISCORD.at(discord_place(interaction.guild_id))


def text_of(reply: Reply, interaction: discord.Interaction[Any]) -> str:
    marked = markup(interaction)
    text = reply.text(marked)
    if reply.note:
        text += "\n" + marked.small(render_line(reply.note, marked))
    return fit(text)


def view_of(buttons: tuple[Button, ...]) -> ui.View | None:
    if not buttons:
        return None
    view = ui.View(timeout=None)
    for button in buttons:
        if button.action != "history":
            raise ValueError(f"no Discord button for {button.action!r}")
        view.add_item(ReplyButton(button.action, int(button.value), button.label))
    view.stop()  # persistent: clicks come back through the dynamic items
    return view


async def answer(
    interaction: discord.Interaction[Any],
    reply: Reply,
    *,
    suffix: str = "",
    announced: bool = False,
) -> None:
    """Show `reply` in the interaction's (deferred) response; announce it in the conversation
    (unless the caller has: `announced`)."""
    extra: dict[str, Any] = {"view": view_of(reply.buttons)}
    if reply.file is not None:
        extra["attachments"] = [discord.File(io.BytesIO(reply.file.data), reply.file.name)]
    try:
        text = fit(text_of(reply, interaction) + suffix)
        await interaction.edit_original_response(content=text, **extra)
    except discord.HTTPException as exc:
        if reply.file is None:
            raise
        log.warning("export upload failed: %s", exc)
        refused = EXPORT_TOO_LARGE if exc.status == 413 else EXPORT_FAILED
        await interaction.edit_original_response(content=refused, view=None)
        return
    if not announced:
        await announce(interaction, reply)


async def announce(interaction: discord.Interaction[Any], reply: Reply) -> None:
    """The reply's line for everyone, in its conversation (not with a file: that is private)."""
    if not reply.announce or reply.target is None or reply.file is not None:
        return
    here = interaction.channel
    target = reply.target.thread or reply.target.channel
    where = (
        here if here is not None and str(here.id) == target else client_channel(interaction, target)
    )
    if not isinstance(where, discord.abc.Messageable):
        return
    try:
        await where.send(render_line(reply.announce, markup(interaction)))
    except discord.HTTPException as exc:
        log.warning("announcement failed conversation=%s: %s", reply.target, exc)


def client_channel(interaction: discord.Interaction[Any], channel_id: str) -> Any:
    """A channel or thread discord.py has in its cache (None when it has not seen it)."""
    return interaction.client.get_channel(int(channel_id))


async def tell(interaction: discord.Interaction[Any], text: str) -> None:
    """A short refusal or apology, whatever state the interaction is in."""
    with contextlib.suppress(discord.HTTPException):
        if interaction.response.is_done():
            await interaction.edit_original_response(content=fit(text), view=None)
        else:
            await interaction.response.send_message(fit(text), ephemeral=True)
