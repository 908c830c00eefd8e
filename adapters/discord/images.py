"""/image and the image buttons on Discord: the core's image flow on a channel.

The offer and the image are normal channel messages (bot token, no 15-minute webhook limit), so
anyone in the channel sees the quote and the result; notices go only to the person concerned
(ephemeral). Every interaction is acknowledged at once with an ephemeral "thinking" response
(type 5): claims and generation happen after, and the notice replaces that response. When a
click ends a quote (generated, expired, cancelled, replaced by a new price, ...) the quote's
buttons are replaced by a line saying so. The line is a function of the stored job alone, so two
clicks racing to write it write the same text.
"""

from __future__ import annotations

import contextlib
import logging
from typing import Any

import discord

from adapters.discord.image_surface import ChannelImageSurface, DiscordImageSurface
from adapters.discord.private import fit
from adapters.discord.turns import PLATFORM, key_for
from bot.app import App
from bot.commands.spec import Args, Command
from bot.domain import Actor
from bot.images import ImageRequest, flow
from bot.images.views import outcome_line, unknown_notice
from bot.markup import DISCORD
from bot.ops.background import Background
from bot.ports import SurfaceError
from bot.store.records import ImageJob

__all__ = [
    "ChannelImageSurface",
    "DiscordImageSurface",
    "Images",
    "outcome_line",
    "tell_unknown",
    "unknown_notice",
]

log = logging.getLogger("parley.discord")


async def tell_unknown(client: discord.Client, job: ImageJob) -> None:
    """Post `unknown_notice` in the job's thread (else its channel), pinging only the requester.

    The quote message itself keeps its buttons: its id is not stored, and a click on it shows the
    unknown outcome and closes it."""
    channel = client.get_partial_messageable(int(job.thread_id or job.channel_id))
    requester = [discord.Object(int(job.user_id))]
    mention = discord.AllowedMentions(everyone=False, roles=False, users=requester)
    await channel.send(fit(unknown_notice(job, DISCORD)), allowed_mentions=mention)


def clicker(interaction: discord.Interaction[Any]) -> Actor:
    """Who clicked, as Discord says: the interaction's guild ("dm" outside one) and user."""
    tenant = str(interaction.guild_id) if interaction.guild_id is not None else "dm"
    return Actor(PLATFORM, tenant, str(interaction.user.id))


class Images:
    def __init__(self, app: App, background: Background) -> None:
        self.app = app
        self.background = background
        """Work shutdown waits for (shared with chat turns): a click's generation and its edits."""

    async def image(
        self, interaction: discord.Interaction[Any], command: Command, request: Args
    ) -> None:
        """/image: quote (nothing is spent) and post the offer with its buttons."""
        await interaction.response.defer(ephemeral=True, thinking=True)
        engine = self.app.images
        if engine is None or interaction.channel is None:
            await interaction.edit_original_response(content=flow.IMAGES_OFF)
            return
        key = key_for(interaction.channel, interaction.guild)
        surface = DiscordImageSurface(interaction, interaction.user.display_name)
        try:
            job = await flow.offer_quote(
                engine, ImageRequest(key, str(interaction.user.id), **request), surface
            )
        except SurfaceError as exc:
            log.warning("could not post an image quote: %s", exc)
            await surface.notify(flow.QUOTE_NOT_POSTED)
            return
        if job is not None and not surface.notified:
            await surface.notify(flow.QUOTE_POSTED)

    async def click(self, interaction: discord.Interaction[Any], custom_id: str) -> None:
        """Any img:… button: acknowledge at once, then let the core claim and generate."""
        with self.background.held():
            await self._click(interaction, custom_id)

    async def _click(self, interaction: discord.Interaction[Any], custom_id: str) -> None:
        await interaction.response.defer(ephemeral=True, thinking=True)
        surface = DiscordImageSurface(interaction, interaction.user.display_name)
        closed = await flow.click(self.app.images, custom_id, clicker(interaction), surface)
        if closed is not None and interaction.message is not None:
            await self._close_quote(interaction.message, closed.line)
        if not surface.notified:
            with contextlib.suppress(discord.HTTPException):
                await interaction.delete_original_response()

    async def _close_quote(self, message: discord.Message, line: str) -> None:
        """Replace the quote's buttons with its outcome line."""
        body = message.content.split("\n\n", 1)[0]  # the offer, without an earlier outcome line
        try:
            await message.edit(content=fit(f"{body}\n\n{line}"), view=None)
        except discord.HTTPException as exc:
            log.warning("could not close quote %s: %s", message.id, exc)
