"""Images in the real console process: /image then /generate, and the generate_image tool."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from pathlib import Path

import pexpect
import pytest_asyncio

from tests.e2e.test_console import expect, spawn
from tests.fakes.images.process import image_env
from tests.fakes.images.server import ImageFake
from tests.fakes.llm_server import FakeToolCall, LLMFake, workers_tool_stream

# The LLM fake plays Workers AI for chat; images go to the two providers that do not share its
# settings.
IMAGE_PROVIDERS = ("together", "replicate")


@pytest_asyncio.fixture
async def images() -> AsyncIterator[ImageFake]:
    async with ImageFake() as fake:
        yield fake


def spend(images: ImageFake) -> int:
    """Image-provider calls that could cost money (not downloads of a finished image)."""
    return len([c for c in images.calls if c.provider in IMAGE_PROVIDERS])


async def test_image_quote_then_generate_saves_one_file(
    env: dict[str, str], images: ImageFake, tmp_path: Path
) -> None:
    child = spawn(env | image_env(images, IMAGE_PROVIDERS), tmp_path)
    try:
        await expect(child, "you> ")
        child.sendline("/image a simple sketch of a fox")
        await expect(child, "Image quote")
        await expect(child, r"\[1\] Generate for \$[0-9.]+  \(/generate\)")
        await expect(child, r"\[x\] Cancel")
        await expect(child, "you> ")
        assert spend(images) == 0  # a quote spends nothing
        child.sendline("/generate")
        await expect(child, r"\[image saved to ([^\]\r\n]+)\]")
        saved = Path(child.match.group(1))
        await expect(child, "you> ")
        child.sendline("/generate 7")
        await expect(child, "No such choice")
        await expect(child, "you> ")
        child.sendline("/quit")
        await child.expect(pexpect.EOF, async_=True)
    finally:
        child.close(force=True)
    head = await asyncio.to_thread(saved.read_bytes)
    assert saved.parent == tmp_path and head[:2] in (b"\x89P", b"\xff\xd8")
    assert spend(images) == 1


async def test_model_tool_call_in_console_quotes_and_cancel_spends_nothing(
    llm_fake: LLMFake, env: dict[str, str], images: ImageFake, tmp_path: Path
) -> None:
    call = FakeToolCall("generate_image", {"prompt": "a fox in the snow", "quality": "standard"})
    llm_fake.queue("workers", workers_tool_stream([call], text=["Here you go."]))
    child = spawn(env | image_env(images, IMAGE_PROVIDERS), tmp_path)
    try:
        await expect(child, "you> ")
        child.sendline("Please draw a fox")
        await expect(child, "Here you go.")
        await expect(child, "Image quote")
        await expect(child, r"\[1\] Generate for \$")
        await expect(child, re.escape("nothing is charged until you confirm it"))
        await expect(child, "you> ")
        child.sendline("/cancel")
        await expect(child, "Cancelled; nothing was charged.")
        await expect(child, "you> ")
        child.sendline("/generate")
        await expect(child, "cancelled")
        await expect(child, "you> ")
        child.sendline("/quit")
        await child.expect(pexpect.EOF, async_=True)
    finally:
        child.close(force=True)
    body = llm_fake.calls_to("workers")[-1].body
    assert [t["function"]["name"] for t in body["tools"]] == ["generate_image"]
    assert spend(images) == 0
