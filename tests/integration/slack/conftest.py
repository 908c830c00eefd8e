"""The real Slack adapter (slack-bolt, slack_sdk) in process, against the Slack fake over HTTP.

The bot's web server listens on a free loopback port; requests are signed as Slack signs them
and sent to /slack/events by SlackSender, so every request goes through the same verification,
bolt dispatch and ack as in production.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest_asyncio

from adapters.slack.adapter import EVENTS_PATH, SlackAdapter
from bot.app import App
from tests.fakes.llm_server import LLMFake, llm_fake
from tests.fakes.slack import SlackFake, SlackSender, slack_fake
from tests.support import settings_for

__all__ = ["llm_fake", "slack_fake"]

SECRET = "8f742231b10e8888abcd99yyyzzz85a5"
TEAM = "T0001"


@dataclass
class RunningSlack:
    app: App
    adapter: SlackAdapter
    fake: SlackFake
    sender: SlackSender
    stop: asyncio.Event
    task: asyncio.Task[None]

    async def close(self) -> None:
        self.stop.set()
        await asyncio.wait_for(self.task, 20)
        await self.sender.__aexit__()
        await self.app.close()


async def start_slack(fake: SlackFake, llm: LLMFake, **settings: Any) -> RunningSlack:
    values = {
        "slack_bot_token": fake.bot_token,
        "slack_signing_secret": SECRET,
        "slack_api_url": fake.api_url,
        "host": "127.0.0.1",
        "port": 1,  # HTTP mode needs the web server; it listens on a free port below
    } | settings
    app = await App.build(settings_for(llm, **values))
    adapter = SlackAdapter(app)
    port = await app.web.start("127.0.0.1", 0)
    sender = SlackSender(f"http://127.0.0.1:{port}{EVENTS_PATH}", SECRET, fake, TEAM)
    await sender.__aenter__()
    stop = asyncio.Event()
    task = asyncio.create_task(adapter.run(stop))
    return RunningSlack(app, adapter, fake, sender, stop, task)


@pytest_asyncio.fixture
async def slack_bot(slack_fake: SlackFake, llm_fake: LLMFake) -> AsyncIterator[RunningSlack]:
    running = await start_slack(slack_fake, llm_fake)
    try:
        yield running
    finally:
        await running.close()
