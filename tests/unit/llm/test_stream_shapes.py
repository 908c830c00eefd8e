"""Stream shapes real providers send beyond plain text deltas: content as a list of parts,
reasoning in its own fields, thinking blocks, inline `<think>` blocks, and replies with no text.

Each stream is written on the wire and read back through the real provider over HTTP."""

from __future__ import annotations

from typing import Any

import pytest

from bot.llm.anthropic import AnthropicProvider
from bot.llm.openai_compat import OpenAICompatProvider
from bot.llm.reasoning import ThinkSplitter, no_answer
from bot.llm.types import ChatCall, FinishReason
from bot.llm.workers_ai import WorkersAIProvider
from tests.fakes.llm_server import LLMFake, anthropic_event, raw_stream, sse
from tests.unit.llm._support import MESSAGES, Reply, run

BASE = {"id": "chatcmpl-x", "object": "chat.completion.chunk", "created": 1, "model": "m"}


def chunk(delta: dict[str, Any] | None, finish: str | None = None, **extra: Any) -> bytes:
    choice: dict[str, Any] = {"index": 0, "finish_reason": finish}
    if delta is not None:
        choice["delta"] = delta
    return sse({**BASE, "choices": [choice], **extra})


USAGE = sse({**BASE, "choices": [], "usage": {"prompt_tokens": 9, "completion_tokens": 7}})
DONE = sse("[DONE]")


def reasoning_of(reply: Reply) -> str:
    return "".join(c.reasoning for c in reply.chunks)


def inline_call(*, inside: bool) -> ChatCall:
    return ChatCall("@cf/qwen/qwq-32b", MESSAGES, 64, thinks_inline=inside)


# --- content as a list of parts (Mistral Magistral and other OpenAI-compatible servers) ---


async def test_content_parts_show_their_text_and_keep_thinking_parts_apart(
    llm_fake: LLMFake, openai: OpenAICompatProvider
) -> None:
    thinking = {"type": "thinking", "thinking": [{"type": "text", "text": "The user greets."}]}
    llm_fake.queue(
        "openai",
        raw_stream(
            chunk({"role": "assistant", "content": [thinking]}),
            chunk(
                {
                    "content": [
                        {"type": "thinking", "thinking": [{"type": "text", "text": " Reply."}]}
                    ]
                }
            ),
            chunk({"content": [{"type": "text", "text": "Hello"}]}),
            chunk({"content": [{"type": "text", "text": " there"}, {"type": "image_url"}]}),
            chunk({}, "stop"),
            USAGE,
            DONE,
        ),
    )
    reply = await run(openai)
    assert reply.text == "Hello there"
    assert reasoning_of(reply) == "The user greets. Reply."
    assert reply.finish is FinishReason.STOP


async def test_a_thinking_part_given_as_a_string_is_reasoning(
    llm_fake: LLMFake, openai: OpenAICompatProvider
) -> None:
    llm_fake.queue(
        "openai",
        raw_stream(
            chunk(
                {
                    "content": [
                        {"type": "thinking", "thinking": "hmm"},
                        {"type": "text", "text": "Hi"},
                    ]
                }
            ),
            chunk({}, "stop"),
            DONE,
        ),
    )
    reply = await run(openai)
    assert (reply.text, reasoning_of(reply)) == ("Hi", "hmm")


# --- reasoning fields ---


@pytest.mark.parametrize("field", ["reasoning_content", "reasoning"])
async def test_reasoning_fields_are_never_part_of_the_answer(
    llm_fake: LLMFake, openai: OpenAICompatProvider, field: str
) -> None:
    # DeepSeek/Qwen/vLLM say reasoning_content (content null meanwhile); Groq/OpenRouter say
    # reasoning (content "" meanwhile).
    empty = None if field == "reasoning_content" else ""
    llm_fake.queue(
        "openai",
        raw_stream(
            chunk({"role": "assistant", "content": empty, field: "Let me"}),
            chunk({"content": empty, field: " think."}),
            chunk({"content": "Four.", field: None}),
            chunk({}, "stop"),
            USAGE,
            DONE,
        ),
    )
    reply = await run(openai)
    assert reply.text == "Four."
    assert reasoning_of(reply) == "Let me think."
    thinking = [c for c in reply.chunks if c.thinking]
    assert [c.reasoning for c in thinking] == ["Let me", " think."]
    assert all(not c.text for c in thinking)


async def test_a_reply_that_only_reasons_has_no_text_and_says_it_reasoned(
    llm_fake: LLMFake, openai: OpenAICompatProvider
) -> None:
    llm_fake.queue(
        "openai",
        raw_stream(chunk({"reasoning_content": "Long thought"}), chunk({}, "length"), DONE),
    )
    reply = await run(openai)
    assert reply.text == ""
    assert reasoning_of(reply) == "Long thought"
    assert reply.finish is FinishReason.LENGTH


async def test_chunks_without_delta_and_keepalive_comments_are_still_skipped(
    llm_fake: LLMFake, openai: OpenAICompatProvider
) -> None:
    llm_fake.queue(
        "openai",
        raw_stream(
            b": OPENROUTER PROCESSING\n\n",
            chunk(None),
            chunk({"content": "ok"}, padding="x" * 50),
            chunk({}, "stop"),
            USAGE,
            DONE,
        ),
    )
    reply = await run(openai)
    assert reply.text == "ok"
    assert reasoning_of(reply) == ""


# --- Anthropic thinking blocks ---


async def test_anthropic_thinking_and_redacted_blocks_show_as_thinking_only(
    llm_fake: LLMFake, anthropic: AnthropicProvider
) -> None:
    message = {
        "id": "msg_1",
        "type": "message",
        "role": "assistant",
        "content": [],
        "model": "claude-test",
        "usage": {"input_tokens": 30, "output_tokens": 1},
    }

    def start(index: int, block: dict[str, Any]) -> bytes:
        return anthropic_event("content_block_start", index=index, content_block=block)

    def delta(index: int, kind: str, **fields: Any) -> bytes:
        return anthropic_event("content_block_delta", index=index, delta={"type": kind, **fields})

    def stop(index: int) -> bytes:
        return anthropic_event("content_block_stop", index=index)

    llm_fake.queue(
        "anthropic",
        raw_stream(
            anthropic_event("message_start", message=message),
            start(0, {"type": "thinking", "thinking": ""}),
            delta(0, "thinking_delta", thinking="Weigh it."),
            delta(0, "signature_delta", signature="EqQB"),
            stop(0),
            start(1, {"type": "redacted_thinking", "data": "EmwKAhgB"}),
            stop(1),
            start(2, {"type": "text", "text": ""}),
            delta(2, "text_delta", text="Yes."),
            stop(2),
            anthropic_event(
                "message_delta", delta={"stop_reason": "end_turn"}, usage={"output_tokens": 40}
            ),
            anthropic_event("message_stop"),
        ),
    )
    reply = await run(anthropic, ChatCall("claude-test", MESSAGES, 64))
    assert reply.text == "Yes."
    assert reasoning_of(reply) == "Weigh it."
    assert sum(c.thinking for c in reply.chunks) == 3  # two block starts and the delta
    assert "EmwKAhgB" not in reasoning_of(reply)  # encrypted: nothing of it is shown


# --- inline <think> blocks (Workers AI R1 distill and QwQ, Ollama, vLLM) ---


async def test_workers_inline_think_without_opening_tag_and_a_split_close(
    llm_fake: LLMFake, workers: WorkersAIProvider
) -> None:
    pieces = ["Okay, the user", " wants 2+2.</th", "ink>", "\n\n", "It is **4**."]
    events = [sse({"response": p}) for p in pieces]
    usage = {"prompt_tokens": 9, "completion_tokens": 20}
    llm_fake.queue("workers", raw_stream(*events, sse({"response": "", "usage": usage}), DONE))
    reply = await run(workers, inline_call(inside=True))
    assert reply.text == "It is **4**."
    assert reasoning_of(reply) == "Okay, the user wants 2+2."
    assert "<" not in reply.text


async def test_workers_inline_think_with_opening_tag_split_across_events(
    llm_fake: LLMFake, workers: WorkersAIProvider
) -> None:
    pieces = ["<thi", "nk>\nHmm", "</think>Answer"]
    llm_fake.queue("workers", raw_stream(*[sse({"response": p}) for p in pieces], DONE))
    reply = await run(workers, inline_call(inside=True))
    assert (reply.text, reasoning_of(reply)) == ("Answer", "\nHmm")


async def test_a_think_block_at_the_start_is_taken_out_for_any_model(
    llm_fake: LLMFake, openai: OpenAICompatProvider
) -> None:
    llm_fake.queue(
        "openai",
        raw_stream(
            chunk({"content": "  <think>"}),
            chunk({"content": "plan</think>\n"}),
            chunk({"content": "Use <think> tags like this."}),
            chunk({}, "stop"),
            DONE,
        ),
    )
    reply = await run(openai)
    assert reply.text == "Use <think> tags like this."  # later tags are the answer's text
    assert reasoning_of(reply) == "plan"


async def test_a_model_marked_inline_that_never_thinks_still_answers(
    llm_fake: LLMFake, workers: WorkersAIProvider
) -> None:
    llm_fake.queue(
        "workers", raw_stream(sse({"response": "Just "}), sse({"response": "this."}), DONE)
    )
    reply = await run(workers, inline_call(inside=True))
    assert reply.text == "Just this."


async def test_an_opened_think_block_cut_by_the_token_limit_is_reasoning_only(
    llm_fake: LLMFake, workers: WorkersAIProvider
) -> None:
    usage = {"prompt_tokens": 9, "completion_tokens": 64}
    events = [sse({"response": "<think>"}), sse({"response": "still going </thi"})]
    llm_fake.queue("workers", raw_stream(*events, sse({"response": "", "usage": usage}), DONE))
    reply = await run(workers, inline_call(inside=False))
    assert reply.text == ""
    assert reasoning_of(reply) == "still going </thi"
    assert reply.finish is FinishReason.LENGTH


@pytest.mark.parametrize(
    ("pieces", "inside", "answer", "reasoning"),
    [
        (["<think>a</think>b"], False, "b", "a"),
        (["<", "t", "h", "i", "n", "k", ">", "x", "<", "/", "think", ">", "y"], False, "y", "x"),
        (["<b>bold</b>"], False, "<b>bold</b>", ""),
        (["<thought>"], False, "<thought>", ""),
        (["x</think>y</think>z"], True, "y</think>z", "x"),
        (["\n\n"], False, "\n\n", ""),
        (["abc", "</", "think", ">"], True, "", "abc"),
    ],
)
def test_think_splitter_cases(pieces: list[str], inside: bool, answer: str, reasoning: str) -> None:
    splitter = ThinkSplitter(inside=inside)
    shown, thought = "", ""
    for piece in pieces:
        text, more = splitter.feed(piece)
        shown, thought = shown + text, thought + more
    text, more = splitter.flush()
    assert (shown + text, thought + more) == (answer, reasoning)


# --- tool calls in the last event ---


async def test_workers_tool_calls_on_the_last_event_with_usage(
    llm_fake: LLMFake, workers: WorkersAIProvider
) -> None:
    last = {
        "response": "",
        "tool_calls": [{"name": "generate_image", "arguments": {"prompt": "a fox"}}],
        "usage": {"prompt_tokens": 30, "completion_tokens": 12},
    }
    llm_fake.queue("workers", raw_stream(sse(last), DONE))
    reply = await run(workers)
    assert reply.text == ""
    assert reply.finish is FinishReason.TOOL_CALLS
    assert [(c.name, c.arguments) for c in reply.chunks[-1].tool_calls] == [
        ("generate_image", {"prompt": "a fox"})
    ]


async def test_a_whole_tool_call_in_the_final_openai_chunk(
    llm_fake: LLMFake, workers: WorkersAIProvider
) -> None:
    function = {"name": "generate_image", "arguments": '{"prompt": "a fox"}'}
    call = {"index": 0, "id": "chatcmpl-tool-1", "type": "function", "function": function}
    final = chunk(
        {"tool_calls": [call]}, "tool_calls", usage={"prompt_tokens": 5, "completion_tokens": 9}
    )
    llm_fake.queue("workers", raw_stream(final, DONE))
    reply = await run(workers)
    assert reply.finish is FinishReason.TOOL_CALLS
    assert [(c.id, c.name) for c in reply.chunks[-1].tool_calls] == [
        ("chatcmpl-tool-1", "generate_image")
    ]


# --- what a reply with no text says ---


def test_no_answer_says_why() -> None:
    assert "token limit thinking" in no_answer(reasoned=True, cut=True)
    assert no_answer(reasoned=True, cut=False) == "The model thought it over but gave no answer."
    assert "generate_image" in no_answer(reasoned=False, cut=False, tools=("generate_image",))
    assert no_answer(reasoned=False, cut=False) == "The model returned an empty answer."
    assert "token limit" in no_answer(reasoned=False, cut=True)
