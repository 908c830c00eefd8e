"""The event-stream normalizer under every provider, over real HTTP against the fake server."""

from __future__ import annotations

import socket

import httpx
import pytest

from bot.llm.errors import classifier_for
from bot.llm.openai_compat import OpenAICompatProvider
from bot.llm.sse import JsonEvents
from bot.llm.types import (
    ConfigError,
    FinishReason,
    QuotaError,
    RequestError,
    StreamTruncated,
    TransientError,
    Usage,
)
from bot.llm.workers_ai import WorkersAIProvider
from tests.fakes.llm_server import (
    LLMFake,
    ReplyScript,
    openai_stream,
    raw_stream,
    sse,
    workers_error,
    workers_stream,
)
from tests.unit.llm._support import chat_call, fail, run

UNICODE = ["café ", "😀 naïve ", "日本語", " ok"]


def _chunk(content: str | None = None, finish: str | None = None, **extra: object) -> bytes:
    delta = {} if content is None else {"content": content}
    choice = {"index": 0, "delta": delta, "finish_reason": finish}
    return sse({"object": "chat.completion.chunk", "choices": [choice], **extra})


async def test_non_object_json_and_non_json_events_are_skipped(
    llm_fake: LLMFake, openai: OpenAICompatProvider
) -> None:
    llm_fake.queue(
        "openai",
        raw_stream(
            sse("[]"),
            _chunk("Hello"),
            sse("null"),
            sse("42"),
            sse('"just a string"'),
            sse("not json at all {"),
            _chunk(" world", "stop"),
            sse("[DONE]"),
        ),
    )
    reply = await run(openai)
    assert reply.text == "Hello world"
    assert reply.finish is FinishReason.STOP


async def test_comments_pings_and_empty_data_are_skipped(
    llm_fake: LLMFake, openai: OpenAICompatProvider
) -> None:
    llm_fake.queue(
        "openai",
        raw_stream(
            b": keep-alive\n\n",
            b": OPENROUTER PROCESSING\n\n",
            _chunk("Hi"),
            b"event: ping\n\n",
            b'event: ping\ndata: {"type": "ping"}\n\n',
            b"data:\n\n",
            b"data: \n\n",
            _chunk("!", "stop"),
            sse("[DONE]"),
        ),
    )
    reply = await run(openai)
    assert reply.text == "Hi!"


@pytest.mark.parametrize("newline", [b"\r\n", b"\r"], ids=["crlf", "lone-cr"])
async def test_crlf_and_lone_cr_line_endings_are_understood(
    llm_fake: LLMFake, openai: OpenAICompatProvider, newline: bytes
) -> None:
    script = openai_stream(["line ", "endings"], usage=(4, 2)).line_endings(newline)
    llm_fake.queue("openai", script.split_every(5))
    reply = await run(openai)
    assert reply.text == "line endings"
    assert reply.usage == Usage(4, 2)


@pytest.mark.parametrize("size", [1, 2, 3, 7, 64])
async def test_json_and_multibyte_utf8_split_across_network_chunks_reassemble_exactly(
    llm_fake: LLMFake, openai: OpenAICompatProvider, size: int
) -> None:
    llm_fake.queue("openai", openai_stream(UNICODE, usage=(9, 4)).split_every(size))
    reply = await run(openai)
    assert reply.text == "".join(UNICODE)
    assert reply.usage == Usage(9, 4)


async def test_raw_line_separator_characters_inside_json_are_not_line_breaks(
    llm_fake: LLMFake, openai: OpenAICompatProvider
) -> None:
    # A JavaScript server's JSON.stringify leaves U+2028/U+2029 raw; httpx's aiter_lines would
    # split on them (and on U+0085, \x0b, \x0c, \x1c…) and break the JSON.
    tricky = "a\u2028b\u2029c\x85d\x0be\x0cf\x1cg"
    llm_fake.queue("openai", openai_stream([tricky]).split_every(4))
    reply = await run(openai)
    assert reply.text == tricky


async def test_utf8_bom_before_the_first_event_is_ignored(
    llm_fake: LLMFake, openai: OpenAICompatProvider
) -> None:
    llm_fake.queue("openai", raw_stream(b"\xef\xbb", b"\xbf" + _chunk("first"), sse("[DONE]")))
    reply = await run(openai)
    assert reply.text == "first"


async def test_done_is_optional_when_a_finish_reason_arrived(
    llm_fake: LLMFake, openai: OpenAICompatProvider
) -> None:
    llm_fake.queue("openai", openai_stream(["no ", "done"], done=False))
    reply = await run(openai)
    assert reply.text == "no done"
    assert reply.finish is FinishReason.STOP


@pytest.mark.parametrize("tail", [b"data: [DONE]\n", b"data: [DONE]"], ids=["newline", "bare"])
async def test_done_without_trailing_blank_line_at_eof_still_ends_cleanly(
    llm_fake: LLMFake, workers: WorkersAIProvider, tail: bytes
) -> None:
    # Workers AI native streams have no finish_reason: only [DONE] separates clean from cut.
    llm_fake.queue("workers", workers_stream(["all ", "there"], done=False).then(tail))
    reply = await run(workers)
    assert reply.text == "all there"
    assert reply.finish is FinishReason.STOP


async def test_last_event_without_trailing_blank_line_is_not_lost(
    llm_fake: LLMFake, openai: OpenAICompatProvider
) -> None:
    llm_fake.queue("openai", raw_stream(_chunk("end"), _chunk(finish="length").rstrip(b"\n")))
    reply = await run(openai)
    assert reply.finish is FinishReason.LENGTH


async def test_chunks_without_choices_or_with_empty_choices_are_tolerated(
    llm_fake: LLMFake, openai: OpenAICompatProvider
) -> None:
    llm_fake.queue(
        "openai",
        raw_stream(
            sse({"object": "chat.completion.chunk", "choices": []}),  # Azure filter preamble
            sse({"object": "chat.completion.chunk"}),
            sse({"choices": None}),
            sse({"choices": [None]}),
            sse({"choices": [{"delta": None}]}),
            sse({"choices": [{"delta": {"content": None}}]}),
            _chunk("kept"),
            _chunk(finish="stop"),
            sse({"choices": [], "usage": {"prompt_tokens": 3, "completion_tokens": 1}}),
            sse("[DONE]"),
        ),
    )
    reply = await run(openai)
    assert reply.text == "kept"
    assert reply.usage == Usage(3, 1)


async def test_usage_from_any_chunk_is_merged_by_max_never_summed(
    llm_fake: LLMFake, openai: OpenAICompatProvider
) -> None:
    # Workers AI compat path: per-chunk delta usage on every chunk, an empty-choices chunk and a
    # native usage chunk with the total (providers.md §1.4).
    delta_usage = {"prompt_tokens": 20, "completion_tokens": 1, "total_tokens": 21}
    total = {"prompt_tokens": 20, "completion_tokens": 3, "total_tokens": 23}
    llm_fake.queue(
        "openai",
        raw_stream(
            _chunk("a", usage=delta_usage, p="xyz"),
            _chunk("b", usage=delta_usage),
            _chunk("c", "stop", usage=delta_usage),
            sse({"choices": [], "usage": delta_usage}),
            sse({"response": "", "usage": total}),
            sse("[DONE]"),
        ),
    )
    reply = await run(openai)
    assert reply.text == "abc"
    assert reply.usage == Usage(prompt_tokens=20, completion_tokens=3)


async def test_usage_on_the_last_chunk_with_a_choice_is_read(
    llm_fake: LLMFake, openai: OpenAICompatProvider
) -> None:
    usage = {"prompt_tokens": 8, "completion_tokens": 2}
    llm_fake.queue("openai", raw_stream(_chunk("ok"), _chunk(finish="stop", usage=usage)))
    reply = await run(openai)
    assert reply.usage == Usage(8, 2)


async def test_text_chunks_carry_usage_only_when_it_grew(
    llm_fake: LLMFake, openai: OpenAICompatProvider
) -> None:
    usage = {"prompt_tokens": 5, "completion_tokens": 1}
    llm_fake.queue(
        "openai",
        raw_stream(_chunk("a", usage=usage), _chunk("b", usage=usage), _chunk("c", "stop")),
    )
    reply = await run(openai)
    assert [c.usage for c in reply.chunks[:-1]] == [Usage(5, 1), None, None]
    assert reply.usage == Usage(5, 1)


async def test_reasoning_deltas_are_hidden(llm_fake: LLMFake, openai: OpenAICompatProvider) -> None:
    reasoning = {"choices": [{"delta": {"reasoning_content": "hmm", "reasoning": "hmm"}}]}
    llm_fake.queue("openai", raw_stream(sse(reasoning), _chunk("answer", "stop")))
    reply = await run(openai)
    assert reply.text == "answer"


@pytest.mark.parametrize(
    "event",
    [
        sse({"error": {"message": "The server had an error", "type": "server_error"}}),
        sse(
            {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}},
            "error",
        ),
        b"event: error\ndata: something broke\n\n",
    ],
    ids=["data-error-object", "event-error-json", "event-error-text"],
)
async def test_inband_error_before_output_raises_without_after_output(
    llm_fake: LLMFake, openai: OpenAICompatProvider, event: bytes
) -> None:
    llm_fake.queue("openai", raw_stream(_chunk(""), event, _chunk("never", "stop")))
    error, text = await fail(openai)
    assert isinstance(error, TransientError)
    assert text == ""
    assert error.after_output is False


@pytest.mark.parametrize(
    "event",
    [
        sse({"error": {"message": "The server had an error", "type": "server_error"}}),
        sse(
            {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}},
            "error",
        ),
    ],
    ids=["data-error-object", "event-error"],
)
async def test_inband_error_after_output_sets_after_output(
    llm_fake: LLMFake, openai: OpenAICompatProvider, event: bytes
) -> None:
    llm_fake.queue("openai", raw_stream(_chunk("partial "), event))
    error, text = await fail(openai)
    assert isinstance(error, TransientError)
    assert text == "partial "
    assert error.after_output is True
    assert error.provider == "openai"


async def test_inband_openrouter_error_code_is_used_as_status(
    llm_fake: LLMFake, openai: OpenAICompatProvider
) -> None:
    event = sse({"error": {"code": 402, "message": "Insufficient credits"}})
    llm_fake.queue("openai", raw_stream(event))
    error, _ = await fail(openai)
    assert isinstance(error, QuotaError)


async def test_http_error_with_json_body_is_classified_before_reading_events(
    llm_fake: LLMFake, openai: OpenAICompatProvider
) -> None:
    body = {"error": {"message": "Bad gateway upstream", "type": "server_error", "code": None}}
    llm_fake.queue("openai", ReplyScript(502, body))
    error, _ = await fail(openai)
    assert isinstance(error, TransientError)
    assert error.status == 502
    assert error.message == "Bad gateway upstream"


async def test_http_error_with_html_body_gets_a_plain_message(
    llm_fake: LLMFake, openai: OpenAICompatProvider
) -> None:
    page = b"<html><body>502 Bad Gateway <script>x</script></body></html>"
    llm_fake.queue("openai", ReplyScript(502, page, content_type="text/html"))
    error, _ = await fail(openai)
    assert isinstance(error, TransientError)
    assert "<html>" not in str(error)


async def test_http_error_with_json_but_event_stream_content_type_is_still_an_error(
    llm_fake: LLMFake, openai: OpenAICompatProvider
) -> None:
    body = {"error": {"message": "nope", "type": "invalid_request_error"}}
    llm_fake.queue("openai", ReplyScript(400, body, content_type="text/event-stream"))
    error, _ = await fail(openai)
    assert isinstance(error, RequestError)


@pytest.mark.parametrize(
    ("reply", "expected"),
    [
        (workers_error(3040, status=200), TransientError),
        (workers_error(3036, status=200), QuotaError),
        (ReplyScript(200, {"error": {"code": 401, "message": "No auth credentials"}}), ConfigError),
    ],
    ids=["workers-3040", "workers-3036", "openrouter-401"],
)
async def test_200_with_a_json_error_envelope_instead_of_a_stream_is_classified(
    llm_fake: LLMFake, openai: OpenAICompatProvider, reply: ReplyScript, expected: type
) -> None:
    llm_fake.queue("openai", reply)
    error, _ = await fail(openai)
    assert type(error) is expected


async def test_200_json_success_instead_of_a_stream_is_transient(
    llm_fake: LLMFake, openai: OpenAICompatProvider
) -> None:
    llm_fake.queue("openai", ReplyScript(200, {"result": {"response": "hi"}, "success": True}))
    error, _ = await fail(openai)
    assert type(error) is TransientError
    assert "without an event stream" in error.message


async def test_eof_without_terminator_or_finish_reason_is_truncated(
    llm_fake: LLMFake, openai: OpenAICompatProvider
) -> None:
    llm_fake.queue("openai", openai_stream(["cut ", "here"], finish=None, usage=None, done=False))
    error, text = await fail(openai)
    assert isinstance(error, StreamTruncated)
    assert text == "cut here"
    assert error.after_output is True


async def test_empty_stream_is_truncated_without_after_output(
    llm_fake: LLMFake, openai: OpenAICompatProvider
) -> None:
    llm_fake.queue("openai", raw_stream(b": keep-alive\n\n"))
    error, _ = await fail(openai)
    assert isinstance(error, StreamTruncated)
    assert error.after_output is False


async def test_finish_reason_length_is_reported_as_length(
    llm_fake: LLMFake, openai: OpenAICompatProvider
) -> None:
    llm_fake.queue("openai", openai_stream(["long"], finish="length"))
    reply = await run(openai)
    assert reply.finish is FinishReason.LENGTH


async def test_connection_dropped_mid_stream_is_truncated_after_output(
    llm_fake: LLMFake, openai: OpenAICompatProvider
) -> None:
    script = openai_stream(["half ", "an answer"], finish=None, usage=None, done=False)
    llm_fake.queue("openai", script.dropped())
    error, text = await fail(openai)
    assert isinstance(error, StreamTruncated)
    assert text == "half an answer"
    assert error.after_output is True


async def test_connection_dropped_before_any_event_is_transient_without_after_output(
    llm_fake: LLMFake, openai: OpenAICompatProvider
) -> None:
    llm_fake.queue("openai", raw_stream(b": hi\n\n").dropped())
    error, _ = await fail(openai)
    assert isinstance(error, TransientError)
    assert error.after_output is False


async def test_connection_dropped_after_the_finish_reason_still_ends_cleanly(
    llm_fake: LLMFake, openai: OpenAICompatProvider
) -> None:
    llm_fake.queue("openai", openai_stream(["done"], usage=None, done=False).dropped())
    reply = await run(openai)
    assert reply.text == "done"
    assert reply.finish is FinishReason.STOP


async def test_stalled_stream_hits_the_read_timeout_as_a_transient_error(
    llm_fake: LLMFake,
) -> None:
    llm_fake.queue("openai", raw_stream(_chunk("first ")).then(_chunk("late", "stop"), delay=0.5))
    async with httpx.AsyncClient(timeout=httpx.Timeout(5, read=0.1)) as client:
        provider = OpenAICompatProvider(
            "openai", llm_fake.openai_base, llm_fake.openai_key, client=client
        )
        error, text = await fail(provider)
    assert type(error) is TransientError
    assert "read timeout" in error.message
    assert text == "first "
    assert error.after_output is True


async def test_connection_refused_is_transient() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    provider = OpenAICompatProvider("local", f"http://127.0.0.1:{port}/v1", "sk-unused-key-123")
    try:
        error, _ = await fail(provider)
    finally:
        await provider.aclose()
    assert type(error) is TransientError
    assert error.provider == "local"
    assert str(port) not in str(error)


async def test_a_non_http_base_url_is_a_config_error() -> None:
    provider = OpenAICompatProvider("weird", "ftp://127.0.0.1/v1", None)
    try:
        error, _ = await fail(provider)
    finally:
        await provider.aclose()
    assert isinstance(error, ConfigError)


async def test_closing_the_stream_early_releases_the_connection(
    llm_fake: LLMFake, openai: OpenAICompatProvider
) -> None:
    llm_fake.queue("openai", openai_stream(["one ", "two ", "three"]).paced(0.01))
    stream = openai.stream(chat_call())
    first = await anext(aiter(stream))
    assert first.text == "one "
    await stream.aclose()  # type: ignore[attr-defined]
    reply = await run(openai)  # the client is still usable
    assert reply.text == "Hello from the fake"


async def test_json_events_reports_event_names_and_whether_done_was_seen(
    llm_fake: LLMFake,
) -> None:
    llm_fake.openai_key = None
    llm_fake.queue(
        "openai",
        raw_stream(sse({"n": 1}, "first"), sse({"n": 2}), sse("[DONE]"), sse({"n": 3})),
        raw_stream(sse({"n": 1})),
    )
    body = {"model": "m", "messages": [{"role": "user", "content": "x"}]}
    url = f"{llm_fake.openai_base}/chat/completions"
    classify = classifier_for("test")
    async with httpx.AsyncClient() as client:
        async with client.stream("POST", url, json=body) as response:
            events = JsonEvents(response, classify)
            seen = [pair async for pair in events]
        assert seen == [("first", {"n": 1}), ("message", {"n": 2})]
        assert events.done is True
        async with client.stream("POST", url, json=body) as response:
            events = JsonEvents(response, classify)
            assert [obj async for _, obj in events] == [{"n": 1}]
        assert events.done is False
