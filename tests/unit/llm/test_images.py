"""Pictures in each provider's wire format, through the real providers against the strict LLM
fake: OpenAI-compatible `image_url` parts (data URLs; Workers AI's Llama 4 Scout takes the
same), Anthropic `image` blocks; a text-only Workers AI model refuses parts, as the API does."""

from __future__ import annotations

import base64

import pytest

from bot.llm.anthropic import AnthropicProvider
from bot.llm.openai_compat import OpenAICompatProvider
from bot.llm.types import ConfigError, ImagePart, Message, RequestError, without_images
from bot.llm.workers_ai import WorkersAIProvider
from tests.fakes.llm_server import (
    LLMFake,
    anthropic_stream,
    openai_stream,
    workers_error,
    workers_stream,
)
from tests.unit.llm._support import chat_call, fail, run

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 24
JPEG = b"\xff\xd8\xff\xe0" + b"\x00" * 24
ASKED = (
    Message("system", "Be brief."),
    Message("user", "[image: a.png]\n\nWhat is this?", images=(ImagePart("image/png", PNG),)),
)
SCOUT = "@cf/meta/llama-4-scout-17b-16e-instruct"


def data_url(media_type: str, data: bytes) -> str:
    return f"data:{media_type};base64,{base64.b64encode(data).decode()}"


async def test_openai_compatible_sends_text_then_image_url_parts(
    llm_fake: LLMFake, openai: OpenAICompatProvider
) -> None:
    llm_fake.queue("openai", openai_stream(["A chart."]))
    reply = await run(openai, chat_call("gpt-4o-mini", messages=ASKED))
    assert reply.text == "A chart."
    [call] = llm_fake.calls_to("openai")
    assert call.body["messages"][1] == {
        "role": "user",
        "content": [
            {"type": "text", "text": "[image: a.png]\n\nWhat is this?"},
            {"type": "image_url", "image_url": {"url": data_url("image/png", PNG)}},
        ],
    }


async def test_workers_ai_llama_4_scout_takes_the_same_parts(
    llm_fake: LLMFake, workers: WorkersAIProvider
) -> None:
    llm_fake.queue("workers", workers_stream(["A chart."]))
    reply = await run(workers, chat_call(SCOUT, messages=ASKED))
    assert reply.text == "A chart."
    content = llm_fake.calls_to("workers")[0].body["messages"][1]["content"]
    assert content[1] == {"type": "image_url", "image_url": {"url": data_url("image/png", PNG)}}


async def test_a_text_only_workers_model_refuses_parts_so_pictures_are_dropped_for_it(
    llm_fake: LLMFake, workers: WorkersAIProvider
) -> None:
    error, _ = await fail(workers, chat_call("@cf/meta/llama-3.1-8b-instruct", messages=ASKED))
    assert isinstance(error, RequestError)
    llm_fake.queue("workers", workers_stream(["I can't see it."]))
    call = chat_call("@cf/meta/llama-3.1-8b-instruct", messages=without_images(ASKED))
    assert (await run(workers, call)).text == "I can't see it."
    assert llm_fake.calls_to("workers")[-1].body["messages"][1]["content"] == ASKED[1].content


async def test_anthropic_sends_image_blocks_before_the_text(
    llm_fake: LLMFake, anthropic: AnthropicProvider
) -> None:
    llm_fake.queue("anthropic", anthropic_stream(["A chart."]))
    reply = await run(anthropic, chat_call("claude-sonnet-4-5", messages=ASKED))
    assert reply.text == "A chart."
    [call] = llm_fake.calls_to("anthropic")
    assert call.body["messages"] == [
        {
            "role": "user",
            "content": [
                {"type": "image", "source": {"type": "base64", "media_type": "image/png",
                                             "data": base64.b64encode(PNG).decode()}},
                {"type": "text", "text": "[image: a.png]\n\nWhat is this?"},
            ],
        }
    ]  # fmt: skip


@pytest.mark.parametrize("family", ["openai", "anthropic"])
async def test_the_fake_checks_pictures_as_the_apis_do(
    llm_fake: LLMFake, openai: OpenAICompatProvider, anthropic: AnthropicProvider, family: str
) -> None:
    mislabelled = (Message("user", "What?", images=(ImagePart("image/png", JPEG),)),)
    provider = openai if family == "openai" else anthropic
    error, _ = await fail(provider, chat_call("m", messages=mislabelled))
    assert isinstance(error, RequestError)
    assert "does not match the provided media type" in error.message


async def test_llama_3_2_vision_takes_parts_and_an_unaccepted_licence_is_a_config_error(
    llm_fake: LLMFake, workers: WorkersAIProvider
) -> None:
    model = "@cf/meta/llama-3.2-11b-vision-instruct"
    llm_fake.queue("workers", workers_stream(["A chart."]))
    assert (await run(workers, chat_call(model, messages=ASKED))).text == "A chart."
    parts = llm_fake.calls_to("workers")[0].body["messages"][1]["content"]
    assert [p["type"] for p in parts] == ["text", "image_url"]
    llm_fake.queue("workers", workers_error(5016))
    error, _ = await fail(workers, chat_call(model, messages=ASKED))
    assert isinstance(error, ConfigError)
