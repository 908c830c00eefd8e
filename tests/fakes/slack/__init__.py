"""A strict fake of the Slack Web API (plus response_url, uploads and Socket Mode) and a sender of
signed requests, so the real slack-bolt adapter runs against loopback only.

    async with SlackFake() as fake:                   # or the `slack_fake` fixture
        SLACK_API_URL = fake.api_url; SLACK_BOT_TOKEN = fake.bot_token
        async with SlackSender(events_url, secret, fake) as slack:
            await slack.command("/chat", "hi", user="U1", channel="C1")
        await fake.wait_for(lambda: fake.calls_to("chat.update"))

server.py holds the plumbing and the injection helpers (`limit`, `inject`, `native_streaming`),
methods.py the Web API methods, files.py the strict upload flow, socket_mode.py Socket Mode,
validate.py what it rejects, sender.py the signed slash commands, events and clicks.
"""

from collections.abc import AsyncIterator

import pytest_asyncio

from tests.fakes.slack.records import Ephemeral, Message, ResponseUrl, SlackCall, SocketAck
from tests.fakes.slack.sender import SlackSender, signature
from tests.fakes.slack.server import BOT_ID, BOT_USER, SlackFake


@pytest_asyncio.fixture
async def slack_fake() -> AsyncIterator[SlackFake]:
    async with SlackFake() as fake:
        yield fake


__all__ = [
    "BOT_ID",
    "BOT_USER",
    "Ephemeral",
    "Message",
    "ResponseUrl",
    "SlackCall",
    "SlackFake",
    "SlackSender",
    "SocketAck",
    "signature",
    "slack_fake",
]
