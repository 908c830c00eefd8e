"""The ImageSurface on Discord: where image quotes, images and notices are posted."""

from __future__ import annotations

import io
import logging
from typing import Any

import discord

from adapters.discord.private import fit
from adapters.discord.views import image_view
from bot.ports import ImageUpload, MessageRef, QuoteOffer, SurfaceError

log = logging.getLogger("parley.discord")


class ChannelImageSurface:
    """The ImageSurface of a chat turn (the model's generate_image tool): offers, images and
    notices all in the turn's thread or channel."""

    def __init__(self, channel: discord.abc.Messageable, asker: str) -> None:
        self._target = channel
        self._asker = asker
        self.notified = False

    def _channel(self) -> discord.abc.Messageable:
        return self._target

    async def offer(self, offer: QuoteOffer) -> MessageRef:
        text = f"{offer.text}\nRequested by **{self._asker}**."
        try:
            sent = await self._channel().send(text, view=image_view(offer.buttons))  # type: ignore[arg-type]
        except discord.HTTPException as exc:
            raise SurfaceError(f"discord {exc.status} (code {exc.code}): {exc.text}") from exc
        return MessageRef(str(sent.id), str(sent.channel.id))

    async def upload(self, image: ImageUpload) -> MessageRef:
        """The image as a file attachment (multipart), its caption and badges, Regenerate."""
        badges = " · ".join(f"`{b}`" for b in image.badges)
        text = f"{image.caption}\n{badges}\nFor **{self._asker}**."
        file = discord.File(io.BytesIO(image.data), filename=image.filename)
        try:
            view = image_view(image.buttons)
            sent = await self._channel().send(text, file=file, view=view)  # type: ignore[arg-type]
        except discord.HTTPException as exc:
            raise SurfaceError(f"discord {exc.status} (code {exc.code}): {exc.text}") from exc
        return MessageRef(str(sent.id), str(sent.channel.id))

    async def notify(self, text: str) -> None:
        """A plain message in the thread: there is no interaction to answer privately."""
        self.notified = True
        try:
            await self._channel().send(fit(text))
        except discord.HTTPException as exc:
            log.warning("could not post an image notice: %s", exc)


class DiscordImageSurface(ChannelImageSurface):
    """The ImageSurface on one interaction: offers and images in its channel, notices private."""

    def __init__(self, interaction: discord.Interaction[Any], asker: str) -> None:
        super().__init__(interaction.channel, asker)  # type: ignore[arg-type]
        self._interaction = interaction

    def _channel(self) -> discord.abc.Messageable:
        channel = self._interaction.channel
        if channel is None or not hasattr(channel, "send"):
            raise SurfaceError("this interaction has no channel to post in")
        return channel  # type: ignore[return-value]

    async def notify(self, text: str) -> None:
        """Into the ephemeral response this interaction was deferred with."""
        self.notified = True
        try:
            await self._interaction.edit_original_response(content=text)
        except discord.HTTPException as exc:
            log.warning("could not show an image notice: %s", exc)
