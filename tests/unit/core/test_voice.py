"""Voice notes (bot/voice.py, bot/attachments.py): transcribed by Workers AI Whisper or OpenAI
against the strict LLM fake, shown under the answer, given to the model as the user's words,
billed per audio minute; too long, off, silent or refused, each one clear line."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from decimal import Decimal
from types import SimpleNamespace

import pytest
import pytest_asyncio
from pydantic import SecretStr

from bot.attachments import (
    AttachmentReader,
    Read,
    Transcript,
    bill_voice,
    names,
    stored,
    with_files,
)
from bot.config import ConfigurationError
from bot.domain import Attachment, ConversationKey
from bot.store import Store, UsageStore
from bot.voice import Transcriber, build_transcriber, voice_models
from tests.fakes.llm_server import LLMFake

OGG = b"OggS\x00\x02" + b"\x01" * 64
MODELS = voice_models()


@pytest_asyncio.fixture
async def llm() -> AsyncIterator[LLMFake]:
    async with LLMFake() as fake:
        yield fake


def workers(llm: LLMFake) -> Transcriber:
    return Transcriber.workers_ai(
        MODELS["whisper-large-v3-turbo"], "acct", llm.cloudflare_token,
        api_base_url=f"{llm.url}/client/v4",
    )  # fmt: skip


def openai(llm: LLMFake, key: str | None = None) -> Transcriber:
    base = f"{llm.url}/openai/v1"
    return Transcriber.openai(MODELS["gpt-4o-mini-transcribe"], key or str(llm.openai_key), base)


async def read(transcriber: Transcriber | None, *files: Attachment, seconds: int = 300):  # type: ignore[no-untyped-def]
    reader = AttachmentReader(transcriber=transcriber, voice_seconds=seconds)
    try:
        return await reader.read(files, 100_000)
    finally:
        await reader.aclose()


def voice(data: bytes = OGG, seconds: float = 4.0, name: str = "voice-message.ogg") -> Attachment:
    return Attachment(name, len(data), "audio/ogg", data=data, voice=True, seconds=seconds)


@pytest.mark.parametrize("provider", ["workers", "openai"])
async def test_a_voice_note_is_heard_shown_and_given_to_the_model(
    llm: LLMFake, provider: str
) -> None:
    llm.hear(OGG, "What's the weather in Paris tomorrow?", 4.2)
    transcriber = workers(llm) if provider == "workers" else openai(llm)
    got = await read(transcriber, voice())
    [transcript] = got.transcripts
    assert (transcript.text, transcript.seconds) == ("What's the weather in Paris tomorrow?", 4.2)
    assert got.problems == ("voice-message.ogg, 4 s: “What's the weather in Paris tomorrow?”",)
    assert with_files("(sent voice-message.ogg)", got.record) == (
        "[voice message voice-message.ogg, 4 s]\nWhat's the weather in Paris tomorrow?"
        "\n\n(sent voice-message.ogg)"
    )
    assert names(got.record) == ["voice-message.ogg"] and stored(got.record).transcripts[
        0
    ].text.startswith("What")
    if provider == "workers":
        [call] = llm.calls_to("workers")
        assert call.path == "/client/v4/accounts/acct/ai/run/@cf/openai/whisper-large-v3-turbo"
        assert call.body["task"] == "transcribe" and call.body["vad_filter"] is True
    else:
        [call] = llm.transcriptions
        assert call.body == {"model": "gpt-4o-mini-transcribe", "response_format": "json"}


async def test_a_long_transcript_is_cut_where_shown_not_where_read(llm: LLMFake) -> None:
    words = "word " * 200
    llm.hear(OGG, words.strip(), 61)
    got = await read(workers(llm), voice(seconds=61))
    [shown] = got.problems
    assert len(shown) < 330 and shown.endswith("…”")
    assert got.transcripts[0].text == words.strip()


@pytest.mark.parametrize(
    ("transcriber", "attachment", "problem"),
    [
        ("off", voice(), "voice-message.ogg: voice notes can't be transcribed here; please type"
                         " your question."),
        ("workers", voice(seconds=400), "voice-message.ogg is 400 s long; I transcribe voice"
                                        " notes up to 300 s."),
        ("workers", voice(b"OggS-unknown"), "voice-message.ogg: I couldn't transcribe it (the"
         " speech service said 400); please try again or type your question."),
        ("bad key", voice(), "voice-message.ogg: I couldn't transcribe it (the speech service"
                             " said 401); please try again or type your question."),
        ("silent", voice(), "voice-message.ogg: I heard no words in it."),
    ],
)  # fmt: skip
async def test_what_cannot_be_heard_is_one_line(
    llm: LLMFake, transcriber: str, attachment: Attachment, problem: str
) -> None:
    llm.hear(OGG, "" if transcriber == "silent" else "hello", 4)
    chosen = {"off": None, "workers": workers(llm), "silent": workers(llm),
              "bad key": openai(llm, "sk-wrong")}[transcriber]  # fmt: skip
    got = await read(chosen, attachment)
    assert got.problems == (problem,)
    assert "sk-" not in problem and "127.0.0.1" not in problem


def test_voice_is_priced_per_minute_from_the_catalog() -> None:
    turbo = MODELS["whisper-large-v3-turbo"]
    assert turbo.price_per_minute == Decimal("0.00051")
    assert turbo.cost(120) == Decimal("0.001020000")
    assert MODELS["whisper-1"].cost(30) == Decimal("0.003000000")


def test_the_transcriber_follows_the_configured_providers() -> None:
    def settings(**values: object) -> SimpleNamespace:
        base = {"voice_model": None, "cloudflare_account_id": None, "cloudflare_api_token": None,
                "openai_api_key": None, "openai_base_url": "https://api.openai.com/v1",
                "cloudflare_api_base_url": "https://api.cloudflare.com/client/v4",
                "cloudflare_ai_gateway": None, "cloudflare_ai_gateway_base_url": "",
                "cloudflare_ai_gateway_token": None}  # fmt: skip
        return SimpleNamespace(**(base | values))

    cf = {"cloudflare_account_id": "a", "cloudflare_api_token": SecretStr("t")}
    assert build_transcriber(settings(**cf)).model.name == "whisper-large-v3-turbo"  # type: ignore[union-attr]
    only_openai = settings(openai_api_key=SecretStr("k"))
    assert build_transcriber(only_openai).model.name == "gpt-4o-mini-transcribe"  # type: ignore[union-attr]
    assert build_transcriber(settings()) is None
    assert build_transcriber(settings(voice_model="off", **cf)) is None
    with pytest.raises(ConfigurationError, match="VOICE_MODEL: unknown model 'nope'"):
        build_transcriber(settings(voice_model="nope"))


async def test_a_voice_note_is_billed_to_its_sender_in_the_conversations_tenant() -> None:
    store = await Store.open("sqlite+aiosqlite:///:memory:")
    try:
        here = ConversationKey("discord", "g1", "c1", "t1")
        conversation = await store.ensure_conversation(here, "alice", "t")  # alice's thread
        bobs = await store.add_message(conversation.id, "user", "(sent v.ogg)", user_id="bob")
        turbo = MODELS["whisper-large-v3-turbo"]
        read = Read(transcripts=(Transcript("v.ogg", "hello", 120, turbo),))
        await bill_voice(store, read, conversation, "bob", bobs.id)
        since = datetime(2000, 1, 1, tzinfo=UTC)
        usage = UsageStore(store)
        [line] = await usage.breakdown(tenant_id="discord:g1", user_id="bob", since=since)
        assert (line.model, line.cost) == ("whisper-large-v3-turbo", Decimal("0.00102"))
        assert await usage.breakdown(tenant_id="discord:g1", user_id="alice", since=since) == []
        assert await usage.breakdown(tenant_id="discord:g2", user_id="bob", since=since) == []
    finally:
        await store.close()
