"""A store that cannot write, on Slack, through the real `python -m bot`: the process's file-size
limit drops to 0 (every write to a file fails with EFBIG, as on a full disk). A /chat is
answered, in its acknowledgement, with what is wrong; no provider is called; /readyz reports
not ready until the disk is back."""

from __future__ import annotations

import json
import resource
from pathlib import Path
from typing import Any

import aiohttp

from bot.store import STORE_FAILING
from tests.e2e.slack.conftest import ALICE, SlackBot, launch_bot, stop_bot
from tests.e2e.slack.helpers import ask
from tests.fakes.llm_server import LLMFake, workers_stream
from tests.fakes.slack import SlackFake


async def readyz(bot: SlackBot) -> tuple[int, dict[str, Any]]:
    async with (
        aiohttp.ClientSession() as session,
        session.get(f"http://127.0.0.1:{bot.port}/readyz") as response,
    ):
        return response.status, await response.json()


def file_size_limit(bot: SlackBot, limit: int) -> None:
    resource.prlimit(bot.process.pid, resource.RLIMIT_FSIZE, (limit, resource.RLIM_INFINITY))


async def test_a_full_disk_refuses_chat_in_the_ack_and_reports_not_ready(tmp_path: Path) -> None:
    async with SlackFake() as fake, LLMFake() as llm:
        bot = await launch_bot(llm, fake, tmp_path)
        try:
            llm.queue("workers", workers_stream(["Fine."]))
            await ask(bot, "before", user=ALICE, channel="C0DISK")
            calls, posts = len(llm.calls), len(fake.calls_to("chat.postMessage"))

            file_size_limit(bot, 0)
            sent = await bot.sender.command("/chat", "while full", user=ALICE, channel="C0DISK")
            assert sent.status == 200
            assert json.loads(sent.body) == {"response_type": "ephemeral", "text": STORE_FAILING}
            status, body = await readyz(bot)
            assert (status, body["checks"]["store"]) == (503, False)
            assert len(llm.calls) == calls
            assert len(fake.calls_to("chat.postMessage")) == posts  # no question quoted

            file_size_limit(bot, resource.RLIM_INFINITY)
            assert (await readyz(bot))[0] == 200
            llm.queue("workers", workers_stream(["Back."]))
            await ask(bot, "after", user=ALICE, channel="C0DISK")
        finally:
            if bot.process.returncode is None:
                file_size_limit(bot, resource.RLIM_INFINITY)
            await stop_bot(bot)
