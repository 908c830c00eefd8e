"""Tool calling and top_p in the three wire formats, over HTTP against the strict fake."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from bot.llm.anthropic import AnthropicProvider
from bot.llm.openai_compat import OpenAICompatProvider
from bot.llm.types import ChatCall, FinishReason, ToolCall, ToolSpec
from bot.llm.workers_ai import WorkersAIProvider
from tests.fakes.llm_server import (
    FakeToolCall,
    LLMFake,
    anthropic_tool_stream,
    openai_tool_stream,
    workers_tool_stream,
)
from tests.unit.llm._support import MESSAGES, run

SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {"prompt": {"type": "string"}, "size": {"type": "string"}},
    "required": ["prompt"],
}
IMAGE_TOOL = ToolSpec("generate_image", "Propose an image (a quote only).", SCHEMA)
WEATHER_TOOL = ToolSpec("weather", "The weather somewhere.", {"type": "object"})
FOX = {"prompt": 'a red fox in the snow, "watercolour" — café style', "size": "1024x1024"}


def tool_call(*tools: ToolSpec, top_p: float | None = None) -> ChatCall:
    return ChatCall("test-model", MESSAGES, 64, tools=tools, top_p=top_p)


# -- OpenAI-compatible -----------------------------------------------------------------------------


async def test_openai_sends_tools_as_functions_with_auto_choice(
    llm_fake: LLMFake, openai: OpenAICompatProvider
) -> None:
    await run(openai, tool_call(IMAGE_TOOL, top_p=0.9))
    body = llm_fake.calls_to("openai")[-1].body
    assert body["tools"] == [
        {
            "type": "function",
            "function": {
                "name": "generate_image",
                "description": "Propose an image (a quote only).",
                "parameters": SCHEMA,
            },
        }
    ]
    assert body["tool_choice"] == "auto"
    assert body["top_p"] == 0.9


async def test_openai_leaves_tools_and_top_p_out_when_unset(
    llm_fake: LLMFake, openai: OpenAICompatProvider
) -> None:
    await run(openai, tool_call())
    body = llm_fake.calls_to("openai")[-1].body
    assert "tools" not in body and "tool_choice" not in body and "top_p" not in body


async def test_openai_assembles_fragmented_arguments_of_several_calls(
    llm_fake: LLMFake, openai: OpenAICompatProvider
) -> None:
    calls = [FakeToolCall("generate_image", FOX, id="call_a"), FakeToolCall("weather", {})]
    script = openai_tool_stream(calls, text=["Sure, ", "here goes."], fragment=5)
    llm_fake.queue("openai", script.split_every(17))
    reply = await run(openai, tool_call(IMAGE_TOOL, WEATHER_TOOL))
    assert reply.text == "Sure, here goes."
    assert reply.finish is FinishReason.TOOL_CALLS
    assert reply.chunks[-1].tool_calls == (
        ToolCall("call_a", "generate_image", FOX),
        ToolCall("call_fake_1", "weather", {}),
    )
    assert all(not c.tool_calls for c in reply.chunks[:-1])


async def test_openai_malformed_arguments_drop_the_call_with_a_log_line(
    llm_fake: LLMFake, openai: OpenAICompatProvider, caplog: pytest.LogCaptureFixture
) -> None:
    calls = [
        FakeToolCall("generate_image", '{"prompt": "a fox", '),  # cut JSON
        FakeToolCall("generate_image", '["not", "an", "object"]'),
        FakeToolCall("generate_image", {"prompt": "a cat"}),
    ]
    llm_fake.queue("openai", openai_tool_stream(calls))
    with caplog.at_level(logging.WARNING, logger="parley.llm.tools"):
        reply = await run(openai, tool_call(IMAGE_TOOL))
    assert reply.chunks[-1].tool_calls == (
        ToolCall("call_fake_2", "generate_image", {"prompt": "a cat"}),
    )
    assert reply.finish is FinishReason.TOOL_CALLS
    dropped = [r for r in caplog.records if "tool call dropped" in r.getMessage()]
    assert len(dropped) == 2 and "provider=openai" in dropped[0].getMessage()


async def test_openai_only_malformed_calls_still_finish_cleanly(
    llm_fake: LLMFake, openai: OpenAICompatProvider
) -> None:
    llm_fake.queue("openai", openai_tool_stream([FakeToolCall("generate_image", "{oops")]))
    reply = await run(openai, tool_call(IMAGE_TOOL))
    assert reply.chunks[-1].tool_calls == ()
    assert reply.finish is FinishReason.TOOL_CALLS


# -- Workers AI native -----------------------------------------------------------------------------


async def test_workers_sends_function_tools_and_top_p(
    llm_fake: LLMFake, workers: WorkersAIProvider
) -> None:
    await run(workers, tool_call(IMAGE_TOOL, top_p=0.5))
    body = llm_fake.calls_to("workers")[-1].body
    assert body["tools"][0]["type"] == "function"
    assert body["tools"][0]["function"]["name"] == "generate_image"
    assert body["tools"][0]["function"]["parameters"] == SCHEMA
    assert body["top_p"] == 0.5


@pytest.mark.parametrize("arguments_as", ["object", "string"])
async def test_workers_native_tool_calls_with_object_or_string_arguments(
    llm_fake: LLMFake, workers: WorkersAIProvider, arguments_as: str
) -> None:
    calls = [FakeToolCall("generate_image", FOX), FakeToolCall("weather", {"city": "Oslo"})]
    llm_fake.queue("workers", workers_tool_stream(calls, arguments_as=arguments_as))
    reply = await run(workers, tool_call(IMAGE_TOOL, WEATHER_TOOL))
    assert reply.finish is FinishReason.TOOL_CALLS  # native streams name no reason: inferred
    assert [(c.name, c.arguments) for c in reply.chunks[-1].tool_calls] == [
        ("generate_image", FOX),
        ("weather", {"city": "Oslo"}),
    ]
    ids = [c.id for c in reply.chunks[-1].tool_calls]
    assert len(set(ids)) == 2 and all(ids)


async def test_workers_accepts_openai_shaped_deltas(
    llm_fake: LLMFake, workers: WorkersAIProvider
) -> None:
    calls = [FakeToolCall("generate_image", FOX, id="call_x")]
    script = workers_tool_stream(calls, text=["One moment."], openai_shaped=True)
    llm_fake.queue("workers", script.split_every(11))
    reply = await run(workers, tool_call(IMAGE_TOOL))
    assert reply.text == "One moment."
    assert reply.chunks[-1].tool_calls == (ToolCall("call_x", "generate_image", FOX),)
    assert reply.finish is FinishReason.TOOL_CALLS


async def test_workers_malformed_string_arguments_drop_the_call(
    llm_fake: LLMFake, workers: WorkersAIProvider
) -> None:
    calls = [FakeToolCall("generate_image", "{'prompt': 'single quotes'}")]
    llm_fake.queue("workers", workers_tool_stream(calls, text=["Hi"]))
    reply = await run(workers, tool_call(IMAGE_TOOL))
    assert reply.text == "Hi"
    assert reply.chunks[-1].tool_calls == ()
    assert reply.finish is FinishReason.TOOL_CALLS  # it asked; the engine says it was malformed


# -- Anthropic -------------------------------------------------------------------------------------


async def test_anthropic_sends_tools_with_input_schema_and_top_p(
    llm_fake: LLMFake, anthropic: AnthropicProvider
) -> None:
    await run(anthropic, tool_call(IMAGE_TOOL, top_p=0.7))
    body = llm_fake.calls_to("anthropic")[-1].body
    assert body["tools"] == [
        {
            "name": "generate_image",
            "description": "Propose an image (a quote only).",
            "input_schema": SCHEMA,
        }
    ]
    assert body["top_p"] == 0.7
    assert "tool_choice" not in body


async def test_anthropic_assembles_tool_use_blocks_from_partial_json(
    llm_fake: LLMFake, anthropic: AnthropicProvider
) -> None:
    calls = [
        FakeToolCall("generate_image", FOX, id="toolu_1"),
        FakeToolCall("weather", {"city": "Oslo"}, id="toolu_2"),
    ]
    script = anthropic_tool_stream(calls, text=["Let me ", "draw that."], fragment=4)
    llm_fake.queue("anthropic", script.split_every(23))
    reply = await run(anthropic, tool_call(IMAGE_TOOL, WEATHER_TOOL))
    assert reply.text == "Let me draw that."
    assert reply.finish is FinishReason.TOOL_CALLS
    assert reply.chunks[-1].tool_calls == (
        ToolCall("toolu_1", "generate_image", FOX),
        ToolCall("toolu_2", "weather", {"city": "Oslo"}),
    )


async def test_anthropic_tool_use_without_input_deltas_has_empty_arguments(
    llm_fake: LLMFake, anthropic: AnthropicProvider
) -> None:
    llm_fake.queue("anthropic", anthropic_tool_stream([FakeToolCall("weather", "")]))
    reply = await run(anthropic, tool_call(WEATHER_TOOL))
    assert reply.chunks[-1].tool_calls == (ToolCall("toolu_fake_0", "weather", {}),)


async def test_anthropic_malformed_partial_json_drops_the_call(
    llm_fake: LLMFake, anthropic: AnthropicProvider
) -> None:
    calls = [FakeToolCall("generate_image", '{"prompt": "fox"'), FakeToolCall("weather", {})]
    llm_fake.queue("anthropic", anthropic_tool_stream(calls))
    reply = await run(anthropic, tool_call(IMAGE_TOOL, WEATHER_TOOL))
    assert [c.name for c in reply.chunks[-1].tool_calls] == ["weather"]


# -- the fake is strict about tools ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("family", "body_tools", "expected"),
    [
        ("openai", [], "non-empty"),
        ("openai", [{"name": "x", "parameters": {"type": "object"}}], "type"),
        ("openai", [{"type": "function", "function": {"name": "bad name!"}}], "name"),
        (
            "openai",
            [{"type": "function", "function": {"name": "x", "parameters": {"type": "array"}}}],
            "object",
        ),
        ("workers", [{"type": "function", "function": {"name": "x", "input_schema": {}}}], "unex"),
        ("anthropic", [{"type": "function", "function": {"name": "x"}}], "Extra inputs"),
        ("anthropic", [{"name": "x"}], "input_schema"),
    ],
)
async def test_fake_rejects_malformed_tools(
    llm_fake: LLMFake,
    openai: OpenAICompatProvider,
    workers: WorkersAIProvider,
    anthropic: AnthropicProvider,
    family: str,
    body_tools: list[Any],
    expected: str,
) -> None:
    provider = {"openai": openai, "workers": workers, "anthropic": anthropic}[family]
    call = ChatCall("test-model", MESSAGES, 64, extra={"tools": body_tools})
    with pytest.raises(Exception) as caught:
        await run(provider, call)
    assert expected in str(caught.value)
    assert getattr(caught.value, "status", None) == 400


async def test_fake_rejects_top_p_out_of_range(
    llm_fake: LLMFake, openai: OpenAICompatProvider
) -> None:
    with pytest.raises(Exception, match="top_p"):
        await run(openai, tool_call(top_p=1.5))
