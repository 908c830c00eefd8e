"""Files sent with a message, read for the model: documents, pictures and voice notes.

`AttachmentReader.read` fetches each file (from the platform's URL with the headers it needs,
streamed and cut off at ATTACHMENT_MAX_BYTES) and turns what it can read into:
- `Document`s: text by extension, by content type or by sniffing (UTF-8 without NUL bytes),
  PDFs through pypdf; their text goes to the model before the user's words, named, within the
  turn's share of the model's window; what does not fit is cut with a note in the text the
  model reads and a line the user sees;
- `Picture`s: scaled down with Pillow, for models that see (llm.types.ImagePart);
- `Transcript`s: voice notes heard by VOICE_MODEL (bot/voice.py), shown under the answer and
  given to the model as the user's words, billed per audio minute (`bill_voice`).
Whatever cannot be read (too large or too long, an unknown type, a damaged or scanned PDF, a
broken image, a refused transcription, a failed download) is one clear line to the user, and
the rest of the turn is still answered.

A turn keeps what it read (`record`, JSON in `messages.attachments`, migration 0010): the
platforms' links expire (Discord's CDN) or need the token (Slack), so later turns re-read what
was stored, never the file.
"""

from __future__ import annotations

import asyncio
import base64
import io
import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import PurePosixPath

import httpx

from bot.domain import Attachment
from bot.llm.types import ImagePart
from bot.pictures import IMAGE_TOKENS, PictureError, scale
from bot.store import Conversation, Store
from bot.voice import Transcriber, TranscriptionFailed, VoiceModel

log = logging.getLogger("parley.attachments")

_TEXT = (
    "txt md markdown rst csv tsv json jsonl ndjson yaml yml toml ini cfg conf log xml html htm css"
    " scss py pyi js mjs cjs ts tsx jsx java kt kts scala go rs c h cc cpp hpp cs swift rb php pl"
    " lua r sql sh bash zsh fish ps1 bat dart vue svelte tex diff patch gradle dockerfile makefile"
    " env properties proto graphql"
)
TEXT_EXTENSIONS = frozenset(_TEXT.split())
IMAGE_EXTENSIONS = frozenset({"png", "jpg", "jpeg", "webp", "gif", "bmp", "heic", "tiff"})
AUDIO_EXTENSIONS = frozenset({"ogg", "oga", "opus", "mp3", "m4a", "wav", "webm", "flac", "aac"})
TEXT_TYPES = ("application/json", "application/xml", "application/x-yaml", "application/toml")
SNIFF_BYTES = 8192
DOCUMENT_SHARE = 0.6
"""Of the prompt's room in the model's window, what files may take: the rest is the history."""
FETCH_SECONDS = 30.0

VOICE_OFF = "{name}: voice notes can't be transcribed here; please type your question."
VOICE_TOO_LONG = "{name} is {seconds:,} s long; I transcribe voice notes up to {limit:,} s."
VOICE_SILENT = "{name}: I heard no words in it."
VOICE_HEARD = "{name}, {seconds:.0f} s: “{text}”"
HEARD_SHOWN = 280
"""Characters of a transcript shown under the answer (all of it goes to the model and /export)."""
TOO_MANY = "I read {limit} files a message; I skipped {names}."
TOO_LARGE = "{name} is {size}; I read files up to {limit}."
UNKNOWN_TYPE = "{name}: I can't read this kind of file (text, code, CSV, JSON and PDF I can)."
DOWNLOAD_FAILED = "{name}: I couldn't download it{why}; please send it again."
SIGN_IN_PAGE = (
    "{name}: Slack sent a sign-in page instead of the file: the app needs the files:read scope."
)
PDF_DAMAGED = "{name} could not be read as a PDF (it may be damaged)."
PDF_LOCKED = "{name} is password-protected; I can't read it."
PDF_NO_TEXT = "{name} has no text I can read (a scan or images only); I can't read scans yet."
EMPTY = "{name} is empty."
CUT = "{name} is long: I read the first {percent}% ({shown:,} of {total:,} characters)."
NO_ROOM = "{name} did not fit in what this model can read at once; I skipped it."
CUT_MARK = "\n[… the rest of this file ({left:,} characters) was cut to fit]"


class _Unreadable(Exception):
    """One file could not be read; the message is for the user."""


@dataclass(frozen=True, slots=True)
class Document:
    name: str
    text: str
    total: int
    """Characters of text the file had (more than `text` holds when it was cut)."""
    pages: int | None = None


@dataclass(frozen=True, slots=True)
class Picture:
    name: str
    media_type: str
    data: bytes = field(repr=False)


@dataclass(frozen=True, slots=True)
class Transcript:
    name: str
    text: str
    seconds: float
    model: VoiceModel | None = field(default=None, compare=False)
    """What transcribed it (and bills it); None for one read back from the store."""


@dataclass(frozen=True, slots=True)
class Read:
    documents: tuple[Document, ...] = ()
    pictures: tuple[Picture, ...] = ()
    transcripts: tuple[Transcript, ...] = ()
    problems: tuple[str, ...] = ()
    """One line each, for the user: what was cut, skipped or could not be read."""

    def told(self, text: str) -> str:
        """A user turn as the model reads it: each file's text, named, each picture's name, each
        voice note's words (the user's own, spoken), then the words they typed."""
        parts = [_rendered(d) for d in self.documents]
        parts += [f"[image: {p.name}]" for p in self.pictures]
        parts += [
            f"[voice message {t.name}, {t.seconds:.0f} s]\n{t.text}" for t in self.transcripts
        ]
        return "\n\n".join([*parts, text]) if parts else text

    @property
    def images(self) -> tuple[ImagePart, ...]:
        """The pictures, as the model is shown them."""
        return tuple(ImagePart(p.media_type, p.data) for p in self.pictures)

    @property
    def record(self) -> str | None:
        """What the turn keeps (`messages.attachments`), None when it read nothing."""
        if not self.documents and not self.pictures and not self.transcripts:
            return None
        return json.dumps(
            [{"name": d.name, "text": d.text, "total": d.total, "pages": d.pages}
             for d in self.documents]
            + [{"name": p.name, "image": base64.b64encode(p.data).decode(),
                "media_type": p.media_type} for p in self.pictures]
            + [{"name": t.name, "transcript": t.text, "seconds": t.seconds}
               for t in self.transcripts],
            ensure_ascii=False,
        )  # fmt: skip


def files_only(attachments: Sequence[Attachment]) -> str:
    """The words of a message that came with files and none of its own."""
    return f"(sent {', '.join(a.name for a in attachments)})" if attachments else ""


def names(record: str | None) -> list[str]:
    """The names of the files a stored turn read (for /export)."""
    kept = stored(record)
    return [
        *(d.name for d in kept.documents),
        *(p.name for p in kept.pictures),
        *(t.name for t in kept.transcripts),
    ]


def stored(record: str | None) -> Read:
    """What a stored turn read, from its record, in one parse (nothing for a damaged one)."""
    if not record:
        return Read()
    try:
        kept = json.loads(record)
        return Read(
            tuple(Document(d["name"], d["text"], d["total"], d.get("pages"))
                  for d in kept if "text" in d),
            tuple(Picture(d["name"], d["media_type"], base64.b64decode(d["image"]))
                  for d in kept if "image" in d),
            tuple(Transcript(d["name"], d["transcript"], d["seconds"])
                  for d in kept if "transcript" in d),
        )  # fmt: skip
    except (ValueError, TypeError, KeyError):
        log.warning("a stored attachments record could not be read; left out")
        return Read()


def with_files(text: str, record: str | None) -> str:
    """A user turn as the model reads it (see `Read.told`)."""
    return stored(record).told(text)


def _rendered(document: Document) -> str:
    pages = f' pages="{document.pages}"' if document.pages else ""
    return f'<file name="{document.name}"{pages}>\n{document.text}\n</file>'


def _size(n: int) -> str:
    return f"{n / 1_000_000:.1f} MB" if n >= 100_000 else f"{max(1, n // 1000)} KB"


def _extension(name: str) -> str:
    path = PurePosixPath(name.lower())
    return path.suffix.lstrip(".") or path.name


class AttachmentReader:
    def __init__(
        self,
        *,
        per_turn: int = 5,
        max_bytes: int = 10_000_000,
        text_chars: int = 60_000,
        client: httpx.AsyncClient | None = None,
        transcriber: Transcriber | None = None,
        voice_seconds: int = 300,
    ) -> None:
        self.transcriber = transcriber
        self.voice_seconds = voice_seconds
        self.per_turn = per_turn
        self.max_bytes = max_bytes
        self.text_chars = text_chars
        self._client = client
        self._own_client = client is None

    async def aclose(self) -> None:
        if self.transcriber is not None:
            await self.transcriber.aclose()
        if self._own_client and self._client is not None:
            await self._client.aclose()
            self._client = None

    async def read(self, attachments: Sequence[Attachment], budget_tokens: int) -> Read:
        """What the files say, within DOCUMENT_SHARE of `budget_tokens` (the prompt's room in
        the model's window, ~4 characters a token) and `text_chars`, in all."""
        if not attachments:
            return Read()
        budget_chars = int(budget_tokens * 4 * DOCUMENT_SHARE)
        pictures: list[Picture] = []
        transcripts: list[Transcript] = []
        problems: list[str] = []
        taken, skipped = attachments[: self.per_turn], attachments[self.per_turn :]
        if skipped:
            problems.append(
                TOO_MANY.format(limit=self.per_turn, names=", ".join(a.name for a in skipped))
            )
        room = max(0, min(budget_chars, self.text_chars))
        found: list[Document] = []
        for attachment in taken:
            try:
                document = await self._document(attachment)
            except _Unreadable as exc:
                problems.append(str(exc))
                continue
            if isinstance(document, Picture):
                pictures.append(document)
                room -= IMAGE_TOKENS * 4
                continue
            if isinstance(document, Transcript):
                transcripts.append(document)
                if not document.text:
                    problems.append(VOICE_SILENT.format(name=document.name))
                    continue
                shown = (
                    document.text
                    if len(document.text) <= HEARD_SHOWN
                    else (document.text[: HEARD_SHOWN - 1].rstrip() + "…")
                )
                problems.append(VOICE_HEARD.format(
                    name=document.name, seconds=document.seconds, text=" ".join(shown.split())
                ))  # fmt: skip
                room -= len(document.text)
                continue
            overhead = len(_rendered(Document(document.name, "", 0, document.pages))) + 2
            if room - overhead < 200:
                problems.append(NO_ROOM.format(name=attachment.name))
                continue
            if len(document.text) + overhead > room:
                keep = room - overhead - len(CUT_MARK) - 12
                left = len(document.text) - keep
                problems.append(
                    CUT.format(
                        name=attachment.name,
                        percent=max(1, keep * 100 // len(document.text)),
                        shown=keep,
                        total=len(document.text),
                    )
                )
                text = document.text[:keep] + CUT_MARK.format(left=left)
                document = Document(document.name, text, document.total, document.pages)
            room -= len(document.text) + overhead
            found.append(document)
        return Read(tuple(found), tuple(pictures), tuple(transcripts), tuple(problems))

    async def _document(self, attachment: Attachment) -> Document | Picture | Transcript:
        name, kind = attachment.name, attachment.content_type.split(";")[0].strip().lower()
        extension = _extension(name)
        if attachment.voice or kind.startswith("audio/") or extension in AUDIO_EXTENSIONS:
            return await self._voice(attachment, kind)
        if attachment.size > self.max_bytes:
            size, limit = _size(attachment.size), _size(self.max_bytes)
            raise _Unreadable(TOO_LARGE.format(name=name, size=size, limit=limit))
        pdf = extension == "pdf" or kind == "application/pdf"
        texty = extension in TEXT_EXTENSIONS or kind.startswith("text/") or kind in TEXT_TYPES
        data = await self._fetch(attachment, expect_html=extension in {"html", "htm"})
        if kind.startswith("image/") or extension in IMAGE_EXTENSIONS:
            try:
                media_type, scaled = await asyncio.to_thread(scale, name, data)
            except PictureError as exc:
                raise _Unreadable(str(exc)) from None
            return Picture(name, media_type, scaled)
        if pdf or data.startswith(b"%PDF-"):
            return _pdf(name, data)
        if not texty and b"\0" in data[:SNIFF_BYTES]:
            raise _Unreadable(UNKNOWN_TYPE.format(name=name))
        text = _decoded(data)
        if text is None:
            raise _Unreadable(UNKNOWN_TYPE.format(name=name))
        if not text.strip():
            raise _Unreadable(EMPTY.format(name=name))
        return Document(name, text, len(text))

    async def _voice(self, attachment: Attachment, kind: str) -> Transcript:
        """A voice note's words (VOICE_MODEL), refused unheard when too long or too large."""
        name = attachment.name
        if self.transcriber is None:
            raise _Unreadable(VOICE_OFF.format(name=name))
        if attachment.seconds > self.voice_seconds:
            seconds, limit = round(attachment.seconds), self.voice_seconds
            raise _Unreadable(VOICE_TOO_LONG.format(name=name, seconds=seconds, limit=limit))
        if attachment.size > self.max_bytes:
            size, limit_bytes = _size(attachment.size), _size(self.max_bytes)
            raise _Unreadable(TOO_LARGE.format(name=name, size=size, limit=limit_bytes))
        data = await self._fetch(attachment, expect_html=False)
        try:
            heard = await self.transcriber.transcribe(name, data, kind, attachment.seconds)
        except TranscriptionFailed as exc:
            raise _Unreadable(str(exc)) from None
        return Transcript(name, heard.text, heard.seconds, self.transcriber.model)

    async def _fetch(self, attachment: Attachment, *, expect_html: bool) -> bytes:
        name = attachment.name
        if attachment.data is not None:
            data = attachment.data
        elif attachment.url:
            data = await self._download(attachment, expect_html)
        else:
            raise _Unreadable(DOWNLOAD_FAILED.format(name=name, why=""))
        if len(data) > self.max_bytes:
            raise _Unreadable(
                TOO_LARGE.format(name=name, size=_size(len(data)), limit=_size(self.max_bytes))
            )
        return data

    async def _download(self, attachment: Attachment, expect_html: bool) -> bytes:
        name = attachment.name
        if self._client is None:
            self._client = httpx.AsyncClient(timeout=FETCH_SECONDS, follow_redirects=True)
        chunks: list[bytes] = []
        got = 0
        try:
            async with self._client.stream(
                "GET", attachment.url, headers=dict(attachment.headers)
            ) as response:
                if response.status_code in (401, 403, 404, 410):
                    why = " (the link has expired or I may not read it)"
                    raise _Unreadable(DOWNLOAD_FAILED.format(name=name, why=why))
                if response.status_code != 200:
                    why = f" (HTTP {response.status_code})"
                    raise _Unreadable(DOWNLOAD_FAILED.format(name=name, why=why))
                served = response.headers.get("content-type", "").lower()
                if served.startswith("text/html") and not expect_html:
                    raise _Unreadable(SIGN_IN_PAGE.format(name=name))
                async for chunk in response.aiter_bytes():
                    got += len(chunk)
                    if got > self.max_bytes:
                        size, limit = _size(got), _size(self.max_bytes)
                        raise _Unreadable(TOO_LARGE.format(name=name, size=f"over {size}",
                                                           limit=limit))  # fmt: skip
                    chunks.append(chunk)
        except httpx.HTTPError as exc:
            log.warning("attachment download failed name=%s error=%s", name, type(exc).__name__)
            raise _Unreadable(DOWNLOAD_FAILED.format(name=name, why="")) from None
        return b"".join(chunks)


def _decoded(data: bytes) -> str | None:
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        try:
            return data.decode("utf-16")
        except UnicodeDecodeError:
            return None
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return None


def _pdf(name: str, data: bytes) -> Document:
    from pypdf import PdfReader
    from pypdf.errors import PdfReadError

    try:
        reader = PdfReader(io.BytesIO(data))
        if reader.is_encrypted and not reader.decrypt(""):
            raise _Unreadable(PDF_LOCKED.format(name=name))
        pages = [page.extract_text() or "" for page in reader.pages]
    except _Unreadable:
        raise
    except (PdfReadError, ValueError, KeyError, TypeError, OSError) as exc:
        log.info("unreadable PDF name=%s error=%s", name, type(exc).__name__)
        raise _Unreadable(PDF_DAMAGED.format(name=name)) from None
    except Exception as exc:  # pypdf raises many kinds on hostile input; none may end the turn
        log.warning("unreadable PDF name=%s error=%s", name, type(exc).__name__)
        raise _Unreadable(PDF_DAMAGED.format(name=name)) from None
    text = "\n\n".join(
        f"[page {n}]\n{page.strip()}" for n, page in enumerate(pages, 1) if page.strip()
    )
    if not text:
        raise _Unreadable(PDF_NO_TEXT.format(name=name))
    return Document(name, text, len(text), len(pages))


async def bill_voice(
    store: Store, read: Read, conversation: Conversation, user_id: str, message: int
) -> None:
    """A usage line per voice note transcribed (priced per audio minute, VOICE_MODEL's), for
    the user who sent it (not the conversation's owner) in the conversation's tenant: /usage
    shows it under the speech model's name."""
    for transcript in read.transcripts:
        model = transcript.model
        if model is None:
            continue
        await store.record_usage(
            tenant_id=conversation.tenant_id, user_id=user_id, kind="chat",
            provider=model.provider, model=model.name, prompt_tokens=0, completion_tokens=0,
            cost=model.cost(transcript.seconds), conversation_id=conversation.id,
            message_id=message,
        )  # fmt: skip
