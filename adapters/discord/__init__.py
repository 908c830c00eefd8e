"""The Discord adapter: slash commands, mentions, threads, streamed replies, persistent buttons."""

from __future__ import annotations

from adapters.discord.client import DiscordAdapter, ParleyClient
from bot.app import App

__all__ = ["DiscordAdapter", "ParleyClient", "create"]


def create(app: App) -> DiscordAdapter:
    return DiscordAdapter(app)
