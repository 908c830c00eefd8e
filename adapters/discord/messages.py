"""Plain messages: a mention starts a thread; a reply to the bot, a message in a bot thread or
in a DM (when allowed) continues the conversation it belongs to."""

from __future__ import annotations

import logging
import re
from pathlib import PurePosixPath
from urllib.parse import urlsplit

import discord

from adapters.discord.access import channel_ids, role_keys
from adapters.discord.turns import Asker, Turns, attachment_of, key_for
from bot.commands.access import Access
from bot.commands.chat import ChatCommands
from bot.domain import Attachment

log = logging.getLogger("parley.discord")


def strip_mention(content: str, bot_id: int) -> str:
    return re.sub(rf"<@!?{bot_id}>", "", content).strip()


def pasted_images(message: discord.Message) -> tuple[Attachment, ...]:
    """Pictures of pasted image links, fetched through Discord's media proxy only (never the
    link itself: a user's URL is not ours to fetch). Discord often unfurls a link after the
    message arrives; an embed that is not there yet is not waited for."""
    return tuple(
        Attachment(PurePosixPath(urlsplit(e.url or "").path).name or "image", 0, "image/*",
                   url=e.thumbnail.proxy_url)
        for e in message.embeds
        if e.type == "image" and e.thumbnail.proxy_url
    )  # fmt: skip


class Messages:
    def __init__(self, turns: Turns, access: Access, client: discord.Client) -> None:
        self.turns = turns
        self.access = access
        self.client = client
        app = turns.app
        self.chat = ChatCommands(app.catalog, app.personas, app.store)

    async def on_message(self, message: discord.Message) -> None:
        me = self.client.user
        if me is None or message.author.bot or message.webhook_id is not None:
            return  # never answer ourselves or other bots
        guild = message.guild
        if not self.access.allows(
            user_id=str(message.author.id),
            guild_id=str(guild.id) if guild else None,
            channel_ids=channel_ids(message.channel),
            roles=role_keys(message.author),
        ):
            return
        files = tuple(attachment_of(a) for a in message.attachments) + pasted_images(message)
        asker = Asker(str(message.author.id), message.author.display_name, files)
        prompt = strip_mention(message.content, me.id)
        channel = message.channel
        if guild is None:
            key = key_for(channel, None)
            await self.turns.in_place(key, channel, prompt, asker)
            return
        replied = await self.turns.conversation_replied_to(guild, message)
        if replied is not None:
            await self.turns.in_place(replied.key, channel, prompt, asker, reference=message)
            return
        mentioned = any(user.id == me.id for user in message.mentions)
        if isinstance(channel, discord.Thread):
            key = key_for(channel, guild)
            if await self.chat.addressed(key, mentioned=mentioned):
                await self.turns.in_place(key, channel, prompt, asker)
            return
        if mentioned and isinstance(channel, discord.TextChannel):
            await self.turns.in_new_thread(channel, prompt, asker, reference=message)
