"""Helpers for the image tests: the bot's environment, asking for quotes, clicking, reading."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import aiohttp

from tests.fakes.discord import FakeDiscord, Interaction
from tests.fakes.discord.payloads import LOADING, text_of
from tests.fakes.images.process import image_env
from tests.fakes.images.server import ImageFake

_PASSTHROUGH = ("PATH", "HOME", "LANG", "LC_ALL", "SYSTEMROOT", "TMPDIR")
GENEROUS = {"IMAGES_PER_HOUR": "1000", "IMAGES_PER_DAY": "1000", "DAILY_COST_LIMIT_USD": "1000"}


def images_env(
    fake: FakeDiscord, images: ImageFake, tmp: Path, only: tuple[str, ...], **extra: str
) -> dict[str, str]:
    """Discord and the image providers in `only` pointed at the fakes; no chat provider."""
    env = {k: v for k, v in os.environ.items() if k in _PASSTHROUGH}
    env |= fake.env() | image_env(images, only)
    env |= {
        "DATABASE_URL": f"sqlite+aiosqlite:///{tmp / 'parley.db'}",
        "LOG_LEVEL": "INFO",
        "PYTHONIOENCODING": "utf-8",
        "PYTHONUNBUFFERED": "1",
    }
    return env | GENEROUS | extra


def image_ids(fake: FakeDiscord, message: dict[str, Any], verb: str) -> list[str]:
    return [c for c in fake.custom_ids(message) if c.startswith(f"img:{verb}:")]


async def quote(
    fake: FakeDiscord, channel: str, prompt: str, *, user: str = "alice", **options: Any
) -> tuple[Interaction, dict[str, Any]]:
    """/image in `channel`; returns the command's interaction and the offer message it posted."""
    before = set(fake.messages)
    inter = await fake.slash("image", {"prompt": prompt} | options, user=user, channel=channel)
    offer = await fake.wait_until(
        lambda: next(
            (
                m
                for m in fake.bot_messages(channel)
                if m["id"] not in before and image_ids(fake, m, "c")
            ),
            None,
        ),
        20,
        what=f"a quote for {prompt!r}",
    )
    return inter, offer


async def click(
    fake: FakeDiscord, message: dict[str, Any], verb: str = "c", *, user: str = "alice"
) -> Interaction:
    """Click the first `img:<verb>:` button the message shows now."""
    current = fake.messages[message["id"]]
    (custom_id, *_) = image_ids(fake, current, verb)
    return await fake.click(message["id"], custom_id, user=user)


def notice_of(fake: FakeDiscord, inter: Interaction) -> str | None:
    """The private notice an interaction ended with (None while thinking, or if deleted)."""
    found = fake.messages.get(inter.original_id or "")
    if found is None or found["flags"] & LOADING:
        return None
    assert found["flags"] & 64, "image notices are ephemeral"
    return str(text_of(found))


async def notice(fake: FakeDiscord, inter: Interaction, within: float = 20) -> str:
    text: str = await fake.wait_until(lambda: notice_of(fake, inter), within, what="a notice")
    return text


def uploads(fake: FakeDiscord, channel: str) -> list[dict[str, Any]]:
    return [m for m in fake.bot_messages(channel) if m["attachments"]]


def upload_calls(fake: FakeDiscord, channel: str) -> list[Any]:
    return [
        c for c in fake.calls_to("message.create") if c.params["channel"] == channel and c.files
    ]


async def wait_uploads(fake: FakeDiscord, channel: str, n: int) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = await fake.wait_until(
        lambda: len(uploads(fake, channel)) >= n and uploads(fake, channel), 30, what="uploads"
    )
    return found


def acked_in_time(inter: Interaction) -> bool:
    return inter.acked_at is not None and inter.acked_at - inter.created < 3.0


async def health(port: int) -> dict[str, Any]:
    async with (
        aiohttp.ClientSession() as session,
        session.get(f"http://127.0.0.1:{port}/health-check/image-providers") as response,
    ):
        assert response.status == 200
        body: dict[str, Any] = await response.json()
        return body
