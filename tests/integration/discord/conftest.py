"""The real adapter and discord.py client, in process, against the fake Discord and fake LLMs."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import discord
import pytest
import pytest_asyncio
from discord.gateway import DiscordWebSocket

from adapters.discord import DiscordAdapter, create
from bot.app import App
from tests.fakes.discord import FakeDiscord, discord_fake
from tests.fakes.discord.payloads import text_of
from tests.fakes.llm_server import LLMFake, llm_fake
from tests.support import settings_for

__all__ = ["discord_fake", "llm_fake"]


@dataclass
class Running:
    app: App
    adapter: DiscordAdapter
    stop: asyncio.Event
    task: asyncio.Task[None]

    async def close(self) -> None:
        self.stop.set()
        await asyncio.wait_for(self.task, 20)
        await self.app.close()


async def start_bot(fake: FakeDiscord, llm: LLMFake, **settings: Any) -> Running:
    values = {
        "discord_token": fake.token,
        "discord_api_base_url": fake.api_base,
        "discord_gateway_url": fake.gateway_url,
    } | settings
    app = await App.build(settings_for(llm, **values))
    adapter = create(app)
    stop = asyncio.Event()
    task = asyncio.create_task(adapter.run(stop))
    fake.gateway.identified.clear()
    await fake.wait_ready()
    # Events are handled in order, so GUILD_CREATE is processed before anything a test sends;
    # on_ready itself comes only after discord.py's 2 s guild_ready_timeout.
    return Running(app, adapter, stop, task)


@pytest.fixture(autouse=True)
def _restore_discord_endpoints(monkeypatch: pytest.MonkeyPatch) -> None:
    """The adapter points discord.py's class-level endpoints at the fake; undo it per test."""
    monkeypatch.setattr(discord.http.Route, "BASE", discord.http.Route.BASE)
    monkeypatch.setattr(DiscordWebSocket, "DEFAULT_GATEWAY", DiscordWebSocket.DEFAULT_GATEWAY)


@pytest_asyncio.fixture
async def bot(discord_fake: FakeDiscord, llm_fake: LLMFake) -> AsyncIterator[Running]:
    running = await start_bot(discord_fake, llm_fake)
    try:
        yield running
    finally:
        await running.close()


def ephemeral_texts(fake: FakeDiscord, interaction_token: str) -> list[str]:
    inter = fake.interactions_by_token[interaction_token]
    ids = [i for i in [inter.original_id, *inter.followups] if i]
    return [text_of(fake.messages[i]) for i in ids if i in fake.messages]
