"""Files on Slack (issue 17), through the real `python -m bot` process: a `file_share` message
whose files the fake serves at `url_private_download` to the bot's token only; the text sent to
the model, and one line under the answer for what could not be read."""

from __future__ import annotations

import io

from PIL import Image

from tests.e2e.slack.conftest import ALICE, SlackBot
from tests.e2e.slack.helpers import run_command, wait_answer
from tests.fakes.files import pdf
from tests.fakes.llm_server import workers_stream

DM = "D0FILES"
REPORT = ["Revenue in Q3 was 4.2 million euros.", "Costs fell by 8 percent."]


async def test_a_pdf_in_a_dm_is_read_with_the_bot_token_and_answered(bot: SlackBot) -> None:
    fake = bot.fake
    clip = b"\x00\x00\x00\x18ftypM4A " + b"\x05" * 100
    bot.llm.hear(clip, "Answer in euros please.", 2.0)
    bot.llm.queue("workers", workers_stream(["4.2 million ", "euros."]))
    event = bot.sender.message(
        DM, ALICE, "What was the revenue?",
        files=[("report.pdf", pdf(REPORT), "application/pdf"),
               ("clip.m4a", clip, "audio/mp4")],
    )  # fmt: skip
    await bot.sender.event(event)
    [reply] = await wait_answer(fake, DM, None)
    assert reply.text.startswith("4.2 million euros.")
    assert "_📎 clip.m4a, 2 s: “Answer in euros please.”_" in reply.text
    assert [path.rsplit("/", 1)[1] for path, _ in fake.user_files.requests] == [
        "report.pdf",
        "clip.m4a",
    ]
    assert all(
        h["Authorization"] == f"Bearer {fake.bot_token}" for _, h in fake.user_files.requests
    )
    [heard, call] = bot.llm.calls_to("workers")
    assert heard.path.endswith("@cf/openai/whisper-large-v3-turbo")
    asked = call.body["messages"][-1]
    assert asked["role"] == "user"
    assert asked["content"] == (
        f'<file name="report.pdf" pages="2">\n[page 1]\n{REPORT[0]}\n\n[page 2]\n{REPORT[1]}'
        "\n</file>\n\n[voice message clip.m4a, 2 s]\nAnswer in euros please."
        "\n\nWhat was the revenue?"
    )


async def test_a_file_slack_will_not_hand_over_is_named_and_the_question_answered(
    bot: SlackBot,
) -> None:
    fake = bot.fake
    bot.llm.queue("workers", workers_stream(["From your words alone: yes."]))
    event = bot.sender.message(DM, ALICE, "Is this fine?", files=[("a.txt", b"x", "text/plain")])
    fake.user_files.files = {
        path: hosted.__class__(hosted.data, hosted.content_type, token="xoxb-another-app")
        for path, hosted in fake.user_files.files.items()
    }  # as if the token lacked files:read: Slack answers with its sign-in page
    await bot.sender.event(event)
    [reply] = await wait_answer(fake, DM, None)
    assert reply.text.startswith("From your words alone: yes.")
    assert "_📎 a.txt: Slack sent a sign-in page instead of the file: the app" in reply.text
    assert bot.llm.calls_to("workers")[0].body["messages"][-1]["content"] == "Is this fine?"


async def test_a_picture_in_a_dm_goes_to_the_dms_vision_model(bot: SlackBot) -> None:
    fake = bot.fake
    post = await run_command(bot, "/model", "llama-4-scout", user=ALICE, channel=DM)
    assert "Llama 4 Scout" in post["text"]
    out = io.BytesIO()
    Image.new("RGBA", (300, 200), (0, 128, 0, 128)).save(out, "PNG")
    bot.llm.queue("workers", workers_stream(["A green ", "rectangle."]))
    event = bot.sender.message(
        DM, ALICE, "What is it?", files=[("g.png", out.getvalue(), "image/png")]
    )
    await bot.sender.event(event)
    *_, reply = await wait_answer(fake, DM, None)  # after what /model said
    assert reply.text.startswith("A green rectangle.")
    [call] = bot.llm.calls_to("workers")
    assert call.path.endswith("@cf/meta/llama-4-scout-17b-16e-instruct")
    text, image = call.body["messages"][-1]["content"]
    assert text["text"] == "[image: g.png]\n\nWhat is it?"
    assert image["image_url"]["url"].startswith("data:image/png;base64,")  # transparency kept
