"""Files on Discord (issue 17), through the real `python -m bot` process: a user's message in a
bot thread with attachments on the fake CDN (signed links that expire), the text the model is
sent in the Workers AI wire format, and one clear line under the answer for each file that
could not be read."""

from __future__ import annotations

import base64
import io
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from PIL import Image

from tests.e2e.discord.conftest import BotProcess, discord_env
from tests.e2e.discord.test_chat import World, finished_anywhere, thread_of
from tests.fakes.discord import FakeDiscord
from tests.fakes.discord.payloads import text_of
from tests.fakes.files import pdf
from tests.fakes.llm_server import LLMFake, workers_stream

pytestmark = pytest.mark.asyncio(loop_scope="module")

REPORT = ["Revenue in Q3 was 4.2 million euros.", "Costs fell by 8 percent."]


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def world(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[World]:
    tmp: Path = tmp_path_factory.mktemp("discord-files")
    async with FakeDiscord(channels=8) as fake, LLMFake() as llm:
        bot = await BotProcess(fake, discord_env(fake, llm, tmp), tmp).start()
        try:
            yield World(fake, llm, bot)
        finally:
            await bot.stop()
            assert "Traceback" not in bot.logs(), bot.logs()[-3000:]


async def thread(world: World, **options: str) -> str:
    fake, channel = world.fake, world.channels.take()
    await fake.slash("chat", {"prompt": "Hello"} | options, channel=channel)
    found: str = await fake.wait_until(lambda: thread_of(fake, channel), 20, what="a thread")
    await fake.wait_until(lambda: finished_anywhere(fake, channel), 20, what="the first answer")
    return found


async def answer_after(world: World, where: str, before: dict[str, Any] | None) -> str:
    fake = world.fake
    done = await fake.wait_until(
        lambda: (m := fake.finished(where)) is not None and m is not before and m, 20,
        what="the answer",
    )  # fmt: skip
    return text_of(done)


async def test_a_pdf_question_is_answered_from_the_pdf_and_later_turns_keep_it(
    world: World,
) -> None:
    fake, where = world.fake, await thread(world)
    question = "What was the revenue?"
    world.answers.add(
        f'<file name="report.pdf" pages="2">\n[page 1]\n{REPORT[0]}\n\n[page 2]\n{REPORT[1]}'
        f"\n</file>\n\n{question}",
        workers_stream(["4.2 million ", "euros."]),
    )
    before = fake.finished(where)
    await fake.say(question, channel=where, files=[("report.pdf", pdf(REPORT), "application/pdf")])
    assert (await answer_after(world, where, before)).startswith("4.2 million euros.")
    [cdn_get] = fake.cdn.requests
    assert cdn_get[0].endswith("/report.pdf")

    # The CDN link has expired by now for all that matters: the next turn re-reads the stored text.
    fake.cdn.files.clear()
    before = fake.finished(where)
    await fake.say("And the costs?", channel=where)
    await answer_after(world, where, before)
    [call] = world.answers.calls_for("And the costs?")
    sent = [m["content"] for m in call.body["messages"] if m["role"] == "user"]
    assert REPORT[1] in sent[-2] and sent[-2].endswith(question)


async def test_files_that_cannot_be_read_are_named_under_the_answer(world: World) -> None:
    fake, where = world.fake, await thread(world)
    world.answers.add(
        '<file name="notes.txt">\nthe launch is on Friday\n</file>\n\n[image: photo.png]\n\n'
        "When is the launch?",
        workers_stream(["Friday."]),
    )
    before = fake.finished(where)
    await fake.say(
        "When is the launch?",
        channel=where,
        files=[
            ("notes.txt", b"the launch is on Friday", "text/plain"),
            ("scan.pdf", pdf(["x"], scanned=True), "application/pdf"),
            ("photo.png", png(), "image/png"),
        ],
    )
    text = await answer_after(world, where, before)
    assert text.startswith("Friday.")
    assert "_📎 scan.pdf has no text I can read (a scan or images only)" in text
    assert "_📎 photo.png: Llama 3.1 8B Instruct (fast) can't see images, so I answered" in text
    assert "Models that can: llama-3.2-vision, llama-4-scout, " in text
    assert "127.0.0.1" not in text and "hm=" not in text


async def test_a_picture_goes_to_a_vision_model_scaled_down_and_stays_for_later_turns(
    world: World,
) -> None:
    fake, where = world.fake, await thread(world, model="llama-4-scout")
    asked = "[image: chart.png]\n\nWhat does the chart show?"
    world.answers.add(asked, workers_stream(["Sales ", "doubled."]))
    before = fake.finished(where)
    await fake.say("What does the chart show?", channel=where,
                   files=[("chart.png", png(3000, 2000), "image/png")])  # fmt: skip
    assert (await answer_after(world, where, before)).startswith("Sales doubled.")
    [call] = world.answers.calls_for(asked)
    assert call.path.endswith("@cf/meta/llama-4-scout-17b-16e-instruct")
    text, image = call.body["messages"][-1]["content"]
    assert text == {"type": "text", "text": asked}
    url = image["image_url"]["url"]
    assert url.startswith("data:image/jpeg;base64,")
    assert sized(base64.b64decode(url.split(",", 1)[1])) == (1568, 1045)

    before = fake.finished(where)
    await fake.say("And in colour?", channel=where)
    await answer_after(world, where, before)
    [later] = world.answers.calls_for("And in colour?")
    assert later.body["messages"][-3]["content"][1]["image_url"]["url"] == url


def png(width: int = 40, height: int = 30) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (width, height), "teal").save(out, "PNG")
    return out.getvalue()


def sized(data: bytes) -> tuple[int, int]:
    with Image.open(io.BytesIO(data)) as image:
        return image.size


async def test_a_voice_message_is_transcribed_shown_and_answered_and_an_expired_link_named(
    world: World,
) -> None:
    fake, where = world.fake, await thread(world)
    recording = b"OggS\x00\x02voice" + b"\x07" * 200
    world.llm.hear(recording, "What is the capital of Peru?", 3.4)
    world.answers.add(
        "[voice message voice-message.ogg, 3 s]\nWhat is the capital of Peru?"
        "\n\n(sent voice-message.ogg)",
        workers_stream(["Lima."]),
    )
    before = fake.finished(where)
    await fake.say("", channel=where, files=[("voice-message.ogg", recording, "audio/ogg")],
                   voice=True)  # fmt: skip
    text = await answer_after(world, where, before)
    assert text.startswith("Lima.")
    assert "_📎 voice-message.ogg, 3 s: “What is the capital of Peru?”_" in text
    [heard] = [c for c in world.llm.calls_to("workers") if "whisper" in c.path]
    assert heard.path.endswith("/ai/run/@cf/openai/whisper-large-v3-turbo")
    rows = world.bot.rows("SELECT model, cost FROM usage_ledger WHERE model = ?",
                          "whisper-large-v3-turbo")  # fmt: skip
    assert [row["cost"] for row in rows] == [28_900]  # 3.4 s at $0.00051 a minute, in nano-USD

    before = fake.finished(where)
    await fake.say("Read this", channel=where, files=[("old.txt", b"x", "text/plain")], ttl=-5)
    text = await answer_after(world, where, before)
    assert "_📎 old.txt: I couldn't download it (the link has expired or I may not read it)" in text


async def test_a_pasted_image_link_is_seen_through_discords_media_proxy_only(
    world: World,
) -> None:
    fake, where = world.fake, await thread(world, model="llama-4-scout")
    link = "https://images.example.com/photos/cat.png"
    asked = f"[image: cat.png]\n\nWhat animal is this? {link}"
    world.answers.add(asked, workers_stream(["A cat."]))
    before = fake.finished(where)
    fetched = len(fake.cdn.requests)
    await fake.say("What animal is this?", channel=where, pasted=[(link, png(), "image/png")])
    assert (await answer_after(world, where, before)).startswith("A cat.")
    [call] = world.answers.calls_for(asked)
    assert call.body["messages"][-1]["content"][1]["image_url"]["url"].startswith("data:image/")
    [(path, _)] = fake.cdn.requests[fetched:]  # the proxy's copy; never images.example.com
    assert path.endswith("/cat.png")


async def test_chat_takes_a_file_option(world: World) -> None:
    fake, channel = world.fake, world.channels.take()
    asked = '<file name="plan.md">\n# Plan\n- launch on Friday\n</file>\n\nWhen do we launch?'
    world.answers.add(asked, workers_stream(["On Friday."]))
    [declared] = [o for o in fake._command("chat", fake.guild_of(channel))["options"]
                  if o["name"] == "file"]  # fmt: skip
    assert declared["type"] == 11 and not declared.get("required")
    file = ("plan.md", b"# Plan\n- launch on Friday", "text/markdown")
    await fake.slash("chat", {"prompt": "When do we launch?", "file": file}, channel=channel)
    final = await fake.wait_until(lambda: finished_anywhere(fake, channel), 20, what="the reply")
    assert text_of(final).startswith("On Friday.")
    assert world.answers.calls_for(asked)
