"""Reading a message's files (bot/attachments.py): every kind, every way it goes wrong, each
through real HTTP against the file host fake (Discord's CDN, Slack's private downloads)."""

from __future__ import annotations

import io
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio

from bot.attachments import (
    AttachmentReader,
    Read,
    files_only,
    names,
    stored,
    with_files,
)
from bot.domain import Attachment
from tests.fakes.files import FileHost, pdf

TOKEN = "xoxb-files-token"
ROOMY = 100_000  # tokens of the prompt's room: nothing here is cut unless a test says so


@pytest_asyncio.fixture
async def host() -> AsyncIterator[FileHost]:
    async with FileHost() as host:
        yield host


def cdn(host: FileHost, name: str, data: bytes, kind: str = "", **kw: float) -> Attachment:
    url = host.cdn(name, data, kind or "application/octet-stream", **kw)
    return Attachment(name, len(data), kind, url=url)


def slack(host: FileHost, name: str, data: bytes, kind: str, token: str = TOKEN) -> Attachment:
    url = host.private(name, data, kind, token=TOKEN)  # the bot's; `token` is what is sent
    bearer = (("Authorization", f"Bearer {token}"),)
    return Attachment(name, len(data), kind, url=url, headers=bearer)


async def read(*attachments: Attachment, budget: int = ROOMY, **settings: int) -> Read:
    reader = AttachmentReader(**settings)
    try:
        return await reader.read(attachments, budget)
    finally:
        await reader.aclose()


@pytest.mark.parametrize(
    ("name", "kind", "data"),
    [
        ("notes.md", "text/markdown", "# Plan\n- ship it"),
        ("data.csv", "text/csv; charset=utf-8", "city,people\nParis,2100000"),
        ("config.json", "application/json", '{"retries": 3}'),
        ("main.rs", "", 'fn main() { println!("hi"); }'),  # by extension, no type given
        ("Dockerfile", "", "FROM python:3.12-slim"),
        ("no-extension", "application/octet-stream", "plain words, sniffed as text"),
        ("bom.txt", "text/plain", "\ufeffa file with a byte order mark"),
    ],
)
async def test_text_files_are_read_by_extension_type_or_sniffing(
    host: FileHost, name: str, kind: str, data: str
) -> None:
    got = await read(cdn(host, name, data.encode("utf-8"), kind))
    assert got.problems == ()
    [document] = got.documents
    assert document.text == data.removeprefix("\ufeff") and document.name == name
    rendered = with_files("What is this?", got.record)
    assert rendered == f'<file name="{name}">\n{document.text}\n</file>\n\nWhat is this?'


async def test_a_pdf_is_read_page_by_page_and_kept_as_its_text(host: FileHost) -> None:
    data = pdf(["Quarterly revenue was 4.2 million.", "Costs fell by 8 percent."])
    got = await read(slack(host, "report.pdf", data, "application/pdf"))
    [document] = got.documents
    assert document.pages == 2
    assert document.text == (
        "[page 1]\nQuarterly revenue was 4.2 million.\n\n[page 2]\nCosts fell by 8 percent."
    )
    assert names(got.record) == ["report.pdf"] and stored(got.record).documents == (document,)
    assert with_files("Sum it up", got.record).startswith('<file name="report.pdf" pages="2">')
    [(_, headers)] = host.requests
    assert headers["Authorization"] == f"Bearer {TOKEN}"


@pytest.mark.parametrize(
    ("attachment", "problem"),
    [
        (lambda h: cdn(h, "scan.pdf", pdf(["x"], scanned=True), "application/pdf"),
         "scan.pdf has no text I can read (a scan or images only); I can't read scans yet."),
        (lambda h: cdn(h, "broken.pdf", b"%PDF-1.4\n1 0 obj\n<< /Type /Cat", "application/pdf"),
         "broken.pdf could not be read as a PDF (it may be damaged)."),
        (lambda h: cdn(h, "tool.exe", b"MZ\x90\x00\x03\x00" * 20, "application/x-msdownload"),
         "tool.exe: I can't read this kind of file (text, code, CSV, JSON and PDF I can)."),
        (lambda h: cdn(h, "latin1.txt", "caf\xe9".encode("latin-1") + b"\x00", "text/plain"),
         "latin1.txt: I can't read this kind of file (text, code, CSV, JSON and PDF I can)."),
        (lambda h: cdn(h, "empty.txt", b"  \n", "text/plain"), "empty.txt is empty."),
        (lambda h: Attachment("voice-message.ogg", 9000, "audio/ogg", url="http://x", voice=True),
         "voice-message.ogg: voice notes can't be transcribed here; please type your question."),
        (lambda h: cdn(h, "old.txt", b"gone", "text/plain", ttl=-60),
         "old.txt: I couldn't download it (the link has expired or I may not read it);"
         " please send it again."),
        (lambda h: slack(h, "secret.txt", b"hidden", "text/plain", token="xoxb-wrong"),
         "secret.txt: Slack sent a sign-in page instead of the file: the app needs the files:read"
         " scope."),
        (lambda h: Attachment("far.txt", 10, "text/plain", url="http://127.0.0.1:9/far.txt"),
         "far.txt: I couldn't download it; please send it again."),
    ],
)  # fmt: skip
async def test_what_cannot_be_read_is_one_clear_line_and_the_rest_is_still_read(
    host: FileHost, attachment: object, problem: str
) -> None:
    good = cdn(host, "good.txt", b"readable", "text/plain")
    got = await read(attachment(host), good)  # type: ignore[operator]
    assert got.problems == (problem,)
    assert [d.name for d in got.documents] == ["good.txt"]
    assert "xoxb" not in problem and "127.0.0.1" not in problem  # no token, no link


async def test_a_server_error_names_its_status(host: FileHost) -> None:
    attachment = cdn(host, "flaky.txt", b"x", "text/plain")
    host.fail(attachment.url, 503)
    got = await read(attachment)
    assert got.problems == ("flaky.txt: I couldn't download it (HTTP 503); please send it again.",)


async def test_size_caps_refuse_before_and_while_downloading(host: FileHost) -> None:
    big = b"a" * 5_000
    declared = cdn(host, "big.txt", big, "text/plain")
    got = await read(declared, max_bytes=4_000)
    assert got.problems == ("big.txt is 5 KB; I read files up to 4 KB.",)
    assert host.requests == []  # refused from its declared size: never downloaded
    lying = Attachment("small.txt", 10, "text/plain", url=declared.url)
    got = await read(lying, max_bytes=4_000)
    assert got.problems == ("small.txt is over 5 KB; I read files up to 4 KB.",)


async def test_too_many_files_reads_the_first_ones_and_names_the_rest(host: FileHost) -> None:
    files = [cdn(host, f"f{n}.txt", f"file {n}".encode(), "text/plain") for n in range(4)]
    got = await read(*files, per_turn=2)
    assert [d.name for d in got.documents] == ["f0.txt", "f1.txt"]
    assert got.problems == ("I read 2 files a message; I skipped f2.txt, f3.txt.",)


async def test_what_does_not_fit_the_model_is_cut_with_a_note_for_both(host: FileHost) -> None:
    long = "word " * 4_000  # 20,000 characters
    got = await read(cdn(host, "long.txt", long.encode(), "text/plain"), budget=2_000)
    [document] = got.documents
    room = int(2_000 * 4 * 0.6)  # DOCUMENT_SHARE of the prompt's room, ~4 characters a token
    assert len(with_files("", got.record)) <= room
    assert document.text.endswith("characters) was cut to fit]") and document.total == 20_000
    [problem] = got.problems
    assert problem.startswith("long.txt is long: I read the first 2")
    assert "of 20,000 characters" in problem
    got = await read(
        cdn(host, "a.txt", b"a" * 3_000, "text/plain"), cdn(host, "b.txt", b"b", "text/plain"),
        budget=1_300,
    )  # fmt: skip
    skipped = "b.txt did not fit in what this model can read at once; I skipped it."
    assert got.problems[-1] == skipped


def test_a_message_of_files_alone_says_which_files() -> None:
    assert files_only([Attachment("a.pdf", 1), Attachment("b.csv", 1)]) == "(sent a.pdf, b.csv)"
    assert files_only([]) == ""
    assert (
        repr(Attachment("a", 1, url="https://cdn/x?hm=sig", headers=(("A", "tok"),))).count("sig")
        == 0
    )


def test_a_damaged_record_is_left_out_not_raised() -> None:
    assert with_files("hi", "not json") == "hi"
    assert names('[{"nope": 1}]') == []


def png(width: int, height: int, mode: str = "RGB", frames: int = 1) -> bytes:
    from PIL import Image

    out = io.BytesIO()
    images = [Image.new(mode, (width, height), color) for color in ("red", "blue")[:frames]]
    kind = "GIF" if frames > 1 else "PNG"
    images[0].save(out, kind, save_all=frames > 1, append_images=images[1:])
    return out.getvalue()


def opened(data: bytes) -> tuple[str, tuple[int, int], str]:
    from PIL import Image

    with Image.open(io.BytesIO(data)) as image:
        return str(image.format), image.size, image.mode


async def test_a_picture_is_scaled_down_and_kept_as_the_model_will_see_it(host: FileHost) -> None:
    got = await read(cdn(host, "wide.png", png(4000, 1000), "image/png"))
    assert got.problems == () and got.documents == ()
    [picture] = got.pictures
    assert picture.media_type == "image/jpeg"
    assert opened(picture.data) == ("JPEG", (1568, 392), "RGB")
    [image] = stored(got.record).images
    assert (image.media_type, image.data) == ("image/jpeg", picture.data)
    assert names(got.record) == ["wide.png"]
    assert with_files("What is it?", got.record) == "[image: wide.png]\n\nWhat is it?"


async def test_transparency_stays_png_and_a_gif_is_its_first_frame(host: FileHost) -> None:
    got = await read(
        cdn(host, "logo.png", png(64, 64, "RGBA"), "image/png"),
        cdn(host, "anim.gif", png(32, 32, frames=2), "image/gif"),
    )
    logo, anim = got.pictures
    assert logo.media_type == "image/png" and opened(logo.data) == ("PNG", (64, 64), "RGBA")
    assert anim.media_type == "image/jpeg" and opened(anim.data)[1] == (32, 32)


async def test_broken_and_oversized_pictures_are_one_line_each(host: FileHost) -> None:
    got = await read(
        cdn(host, "broken.jpg", b"\xff\xd8\xff\xe0 not really", "image/jpeg"),
        cdn(host, "huge.png", png(8000, 6000, "1"), "image/png"),
        cdn(host, "fine.png", png(10, 10), "image/png"),
    )
    assert got.problems == (
        "broken.jpg could not be read as an image (PNG, JPEG, WebP and GIF I can).",
        "huge.png is 8,000×6,000 pixels; I read images up to 40 megapixels.",
    )
    assert [p.name for p in got.pictures] == ["fine.png"]
