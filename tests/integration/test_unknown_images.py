"""Abandoned image jobs reach the adapters: those found at start-up, then each sweep's."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from bot.app import App
from bot.store.records import ImageJob
from tests.fakes.llm_server import LLMFake, llm_fake
from tests.support import settings_for

__all__ = ["llm_fake"]

NOW = datetime(2026, 11, 21, tzinfo=UTC)


def job(job_id: str, platform: str) -> ImageJob:
    return ImageJob(
        id=job_id, tenant_id=f"{platform}:t1", platform=platform, channel_id="c1",
        thread_id="th1", user_id="alice", prompt="a fox", options={}, tier="high",
        size="1024x1024", entry="imagen-4", provider="google", model="imagen-4.0-generate-001",
        estimate=Decimal("0.04"), alternatives=(), status="unknown", created_at=NOW,
        expires_at=NOW + timedelta(minutes=15),
    )  # fmt: skip


async def test_start_up_and_sweep_notices_go_to_the_jobs_platform_once(
    llm_fake: LLMFake, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = await App.build(settings_for(llm_fake))
    try:
        app.unknown_images.extend([job("x", "discord"), job("a", "discord"), job("b", "slack")])
        heard: dict[str, list[str]] = {"discord": [], "slack": []}

        def watcher(platform: str):  # type: ignore[no-untyped-def]
            async def notify(one: ImageJob) -> None:
                if one.id == "x":
                    raise RuntimeError("channel deleted")  # the others are still told
                heard[platform].append(one.id)

            return notify

        app.watch_unknown_images("discord", watcher("discord"))
        app.watch_unknown_images("slack", watcher("slack"))
        for _ in range(3):
            await asyncio.sleep(0)
        assert heard == {"discord": ["a"], "slack": ["b"]}  # start-up jobs, each to its platform

        found = [job("c", "slack"), replace(job("d", "console"), platform="console")]

        async def recover() -> list[ImageJob]:
            return found

        assert app.images is not None
        monkeypatch.setattr(app.images, "recover", recover)
        assert await app.sweep_images() == found
        for _ in range(3):
            await asyncio.sleep(0)
        assert heard == {"discord": ["a"], "slack": ["b", "c"]}  # no one watches the console
    finally:
        await app.close()
