"""Files through the console process (issue 17): /attach a PDF and a CSV, ask, and the model
reads them; what cannot be read is said under the answer; /export lists the files by name."""

from __future__ import annotations

import base64
import io
from pathlib import Path

import pexpect
from PIL import Image

from tests.e2e.test_console import expect, spawn
from tests.fakes.files import pdf
from tests.fakes.llm_server import LLMFake, workers_stream


async def test_console_attach_sends_files_with_the_next_message(
    llm_fake: LLMFake, env: dict[str, str], tmp_path: Path
) -> None:
    (tmp_path / "report.pdf").write_bytes(pdf(["Revenue in Q3 was 4.2 million euros."]))
    (tmp_path / "cities.csv").write_text("city,people\nParis,2100000\n")
    (tmp_path / "scan.pdf").write_bytes(pdf(["x"], scanned=True))
    llm_fake.queue("workers", workers_stream(["4.2 million ", "euros."], usage=(90, 4)))
    child = spawn(env, tmp_path)
    try:
        await expect(child, "you> ")
        child.sendline(f"/attach {tmp_path / 'report.pdf'}")
        await expect(child, r"\(report\.pdf goes with your next message\)")
        child.sendline(f"/attach {tmp_path / 'cities.csv'}")
        await expect(child, r"\(cities\.csv goes with your next message\)")
        child.sendline(f"/attach {tmp_path / 'scan.pdf'}")
        await expect(child, r"\(scan\.pdf goes with your next message\)")
        child.sendline(f"/attach {tmp_path / 'missing.txt'}")
        await expect(child, r"I can't open \S+missing\.txt: No such file or directory\.")
        child.sendline("What was the revenue?")
        await expect(child, r"parley> 4\.2 million euros\.")
        await expect(child, r"📎 scan\.pdf has no text I can read")
        await expect(child, "you> ")
        child.sendline("/export")
        await expect(child, r"exported to (\S+\.md)")
        exported = Path(child.match.group(1).strip())
        child.sendline("/quit")
        await child.expect(pexpect.EOF, async_=True)
    finally:
        child.close(force=True)
    assert child.exitstatus == 0
    asked = llm_fake.calls_to("workers")[0].body["messages"][-1]["content"]
    assert asked == (
        '<file name="report.pdf" pages="1">\n[page 1]\nRevenue in Q3 was 4.2 million euros.\n'
        '</file>\n\n<file name="cities.csv">\ncity,people\nParis,2100000\n\n</file>\n\n'
        "What was the revenue?"
    )
    markdown = exported.read_text()  # noqa: ASYNC240
    assert "_Attached: `report.pdf`, `cities.csv`_" in markdown
    assert "4.2 million euros" in markdown and "Paris,2100000" not in markdown


async def test_console_sends_a_picture_to_a_vision_model(
    llm_fake: LLMFake, env: dict[str, str], tmp_path: Path
) -> None:
    out = io.BytesIO()
    Image.new("RGB", (800, 600), "orange").save(out, "PNG")
    (tmp_path / "chart.png").write_bytes(out.getvalue())
    llm_fake.queue("workers", workers_stream(["An orange ", "square."]))
    child = spawn(env, tmp_path)
    try:
        await expect(child, "you> ")
        child.sendline("/model llama-4-scout")
        await expect(child, "Llama 4 Scout")
        child.sendline(f"/attach {tmp_path / 'chart.png'}")
        await expect(child, r"\(chart\.png goes with your next message\)")
        child.sendline("What is this?")
        await expect(child, r"parley> An orange square\.")
        await expect(child, "you> ")
        child.sendline("/quit")
        await child.expect(pexpect.EOF, async_=True)
    finally:
        child.close(force=True)
    [call] = llm_fake.calls_to("workers")
    assert call.path.endswith("@cf/meta/llama-4-scout-17b-16e-instruct")
    text, image = call.body["messages"][-1]["content"]
    assert text == {"type": "text", "text": "[image: chart.png]\n\nWhat is this?"}
    data = base64.b64decode(image["image_url"]["url"].removeprefix("data:image/jpeg;base64,"))
    with Image.open(io.BytesIO(data)) as seen:
        assert (seen.format, seen.size) == ("JPEG", (800, 600))


async def test_console_transcribes_a_voice_note_and_bills_it(
    llm_fake: LLMFake, env: dict[str, str], tmp_path: Path
) -> None:
    recording = b"OggS\x00\x02" + b"\x09" * 300
    (tmp_path / "note.ogg").write_bytes(recording)
    llm_fake.hear(recording, "Remind me what a haiku is.", 2.6)
    llm_fake.queue("workers", workers_stream(["Three lines: ", "5, 7, 5."], usage=(40, 6)))
    child = spawn(env, tmp_path)
    try:
        await expect(child, "you> ")
        child.sendline(f"/attach {tmp_path / 'note.ogg'}")
        await expect(child, r"\(note\.ogg goes with your next message\)")
        child.sendline("Answer this, please.")
        await expect(child, r"parley> Three lines: 5, 7, 5\.")
        await expect(child, r"📎 note\.ogg, 3 s: “Remind me what a haiku is\.”")
        await expect(child, "you> ")
        child.sendline("/usage")
        await expect(child, r"whisper-large-v3-turbo")
        child.sendline("/quit")
        await child.expect(pexpect.EOF, async_=True)
    finally:
        child.close(force=True)
    heard, asked = llm_fake.calls_to("workers")
    assert heard.path.endswith("/@cf/openai/whisper-large-v3-turbo")
    assert asked.body["messages"][-1]["content"] == (
        "[voice message note.ogg, 3 s]\nRemind me what a haiku is.\n\nAnswer this, please."
    )
