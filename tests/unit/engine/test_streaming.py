"""The reply streamer against a strict in-memory platform on virtual time."""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
import re
from collections.abc import AsyncIterator

import pytest

from bot.engine.streaming import EMPTY_REPLY, RETIRED, ReplyStreamer
from bot.ports import Control, Deferred, MessageRef, PlatformLimits, RateLimited, SurfaceError
from tests.fakes.clock import FakeClock
from tests.fakes.surface import DISCORD_LIKE, MemorySurface, SurfaceEvent

STOP = Control("stop", "turn-1", "Stop")
REGENERATE = Control("regenerate", "turn-1", "Regenerate")
FENCE_LINE = re.compile(r"^ {0,3}```")


@pytest.fixture(autouse=True)
async def _no_leaked_tasks() -> AsyncIterator[None]:
    yield
    current = asyncio.current_task()
    leftover = [t for t in asyncio.all_tasks() if t is not current and not t.done()]
    assert leftover == []


def make(
    limits: PlatformLimits = DISCORD_LIKE,
    *,
    latency: float = 0.0,
    edit_bucket: tuple[int, float] | None = None,
    placeholder: str | None = None,
) -> tuple[FakeClock, MemorySurface, ReplyStreamer]:
    clock = FakeClock()
    surface = MemorySurface(clock, limits, latency=latency, edit_bucket=edit_bucket)
    streamer = ReplyStreamer(
        surface,
        clock=clock,
        streaming_controls=(STOP,),
        final_controls=(REGENERATE,),
        placeholder=placeholder,
    )
    return clock, surface, streamer


async def stream(
    clock: FakeClock, streamer: ReplyStreamer, text: str, *, step: int = 7, every: float = 0.05
) -> None:
    """Feed `text` a few characters at a time, as a model would."""
    for end in range(step, len(text) + step, step):
        streamer.update(text[:end])
        await clock.advance(every)


def gaps(events: list[SurfaceEvent]) -> list[float]:
    return [b.at - a.at for a, b in itertools.pairwise(events)]


def balanced(text: str) -> bool:
    return sum(1 for line in text.split("\n") if FENCE_LINE.match(line)) % 2 == 0


def squash(text: str) -> str:
    return re.sub(r"\s+", "", text)


def reassemble(texts: list[str]) -> str:
    """Undo the fence lines the splitter added at the breaks."""
    out = list(texts)
    for i in range(len(out) - 1):
        if out[i].endswith("\n```") and out[i + 1].startswith("```"):
            out[i] = out[i][: -len("\n```")]
            out[i + 1] = out[i + 1].split("\n", 1)[1]
    return "".join(out)


PROSE = " ".join(["The quick brown fox jumps over the lazy dog."] * 30)
CODE = "\n".join(f"    total += values[{i}]  # step {i}" for i in range(40))
REPLY_3000 = f"{PROSE}\n\n```python\ndef add(values):\n{CODE}\n```\n\n{PROSE[:300]}"


# --- first text and pacing ----------------------------------------------------------------------


async def test_first_post_goes_out_immediately() -> None:
    clock, surface, streamer = make()
    streamer.update("Hello")
    await clock.settle()
    assert [(e.kind, e.text, e.controls, e.at) for e in surface.events] == [
        ("post", "Hello ▌", (STOP,), 0.0)
    ]
    assert streamer.stats.first_visible_at == 0.0
    await streamer.close()


async def test_placeholder_is_posted_at_start_then_replaced_by_text() -> None:
    clock, surface, streamer = make(placeholder="…")
    streamer.start()
    await clock.settle()
    assert [(e.kind, e.text, e.controls) for e in surface.events] == [("post", "…", (STOP,))]
    assert streamer.stats.first_visible_at is None
    streamer.update("Hi")
    await clock.advance(0.5)
    assert len(surface.events) == 1  # the placeholder's message is paced like any other
    await clock.advance(0.5)
    assert surface.events[-1].text == "Hi ▌" and surface.events[-1].at == 1.0
    assert streamer.stats.first_visible_at == 1.0
    await streamer.close()


async def test_many_updates_in_one_tick_make_one_post_of_the_newest_text() -> None:
    clock, surface, streamer = make()
    for end in range(1, 50):
        streamer.update("x" * end)
    await clock.settle()
    assert [e.text for e in surface.events] == ["x" * 49 + " ▌"]
    await streamer.close()


async def test_edits_are_paced_and_many_updates_coalesce_into_few_edits() -> None:
    clock, surface, streamer = make()
    text = "token " * 200
    await stream(clock, streamer, text, step=6, every=0.05)  # 200 updates over 10 s
    calls = surface.events
    assert all(gap >= 1.0 for gap in gaps(calls))
    assert len(calls) <= 11
    await clock.drive(streamer.finish(text))
    assert surface.visible_text() == text.strip()


async def test_newest_text_wins_and_intermediate_texts_are_dropped() -> None:
    clock, surface, streamer = make()
    streamer.update("a")
    await clock.settle()
    for text in ("ab", "abc", "abcd"):
        streamer.update(text)
        await clock.advance(0.2)
    await clock.advance(1.0)
    assert [e.text for e in surface.events] == ["a ▌", "abcd ▌"]
    await streamer.close()


async def test_unchanged_frames_are_skipped() -> None:
    clock, surface, streamer = make()
    streamer.update("Hello")
    await clock.advance(2.0)
    for same in ("Hello ", "Hello\n", "  Hello", "Hello"):
        streamer.update(same)
        await clock.advance(2.0)
    assert len(surface.events) == 1
    await streamer.close()


async def test_cheap_edits_are_not_paced() -> None:
    clock, surface, streamer = make(
        PlatformLimits(max_chars=4000, min_edit_interval=1.0, edits_cheap=True)
    )
    for text in ("a", "ab", "abc"):
        streamer.update(text)
        await clock.settle()
    assert [(e.text, e.at) for e in surface.events] == [("a ▌", 0.0), ("ab ▌", 0.0), ("abc ▌", 0.0)]
    await streamer.close()


async def test_one_call_in_flight_on_a_slow_platform() -> None:
    limits = PlatformLimits(max_chars=2000, min_edit_interval=0.2)
    clock, surface, streamer = make(limits, latency=0.8)
    text = "word " * 150
    await stream(clock, streamer, text, step=5, every=0.01)
    await clock.drive(streamer.finish(text))
    assert surface.max_in_flight == 1
    assert surface.visible_text() == text.strip()


async def test_finish_waits_for_the_call_in_flight_then_delivers_the_final() -> None:
    clock, surface, streamer = make(latency=1.0)
    streamer.update("Hel")
    await clock.settle()
    assert surface.in_flight == 1
    refs = await clock.drive(streamer.finish("Hello"))
    assert refs == [MessageRef("m1", "memory")]
    assert surface.max_in_flight == 1
    assert [(e.kind, e.text, e.at) for e in surface.events] == [
        ("post", "Hel ▌", 1.0),
        ("edit", "Hello", 2.0),  # sent as the post landed (one interval after it went out)
    ]


async def test_the_final_text_goes_at_once_when_the_surface_keeps_a_call_in_hand() -> None:
    for final_interval, landed in ((None, 1.2), (0.0, 0.4)):
        limits = dataclasses.replace(DISCORD_LIKE, final_interval=final_interval)
        clock, surface, streamer = make(latency=0.2, limits=limits)
        streamer.update("Hel")
        await clock.settle()
        await clock.drive(streamer.finish("Hello"))
        assert [(e.kind, e.text, e.at) for e in surface.events] == [
            ("post", "Hel ▌", 0.2),
            ("edit", "Hello", pytest.approx(landed)),  # in hand: sent as the post lands
        ]


async def test_the_interval_is_read_again_before_every_call() -> None:
    clock, surface, streamer = make()
    text = "token " * 100
    streamer.update(text[:12])
    await clock.settle()
    await clock.advance(1.0)
    streamer.update(text[:24])
    await clock.settle()
    surface.limits = dataclasses.replace(
        DISCORD_LIKE, min_edit_interval=3.0
    )  # the platform said so
    for n in range(36, 300, 12):
        streamer.update(text[:n])
        await clock.advance(0.25)
    edits = [e.at for e in surface.events]
    assert gaps(surface.events)[0] == pytest.approx(1.0)
    assert len(edits) >= 3 and all(gap >= 3.0 for gap in gaps(surface.events)[1:])
    await clock.drive(streamer.finish(text))
    assert surface.visible_text() == text.strip()


# --- rate limits --------------------------------------------------------------------------------


async def test_rate_limit_waits_retry_after_then_widens_the_interval() -> None:
    clock, surface, streamer = make()
    streamer.update("a")
    await clock.settle()
    surface.rate_limit_next(1, retry_after=3.0)
    streamer.update("ab")
    await clock.advance(1.0)
    assert surface.rate_limited == 1 and streamer.stats.rate_limited == 1
    streamer.update("abc")
    await clock.advance(2.9)
    assert len(surface.events) == 1  # still inside retry_after
    await clock.advance(0.1)
    assert (surface.events[-1].text, surface.events[-1].at) == ("abc ▌", 4.0)  # newest, not stale
    streamer.update("abcd")
    await clock.advance(1.4)
    assert len(surface.events) == 2  # interval is now 1.5 s
    await clock.advance(0.1)
    assert (surface.events[-1].text, surface.events[-1].at) == ("abcd ▌", 5.5)
    await clock.drive(streamer.finish("abcd!"))
    assert surface.visible_text() == "abcd!"


async def test_a_deferred_edit_waits_its_slot_but_keeps_the_pace() -> None:
    """The adapter's own budget had no slot (Deferred): come back then, with the newest text, and
    keep the interval, since the platform never said the pace was too fast."""
    clock, surface, streamer = make()
    streamer.update("a")
    await clock.settle()
    surface.fail_next(Deferred(2.0, "budget"), times=1, on="edit")
    streamer.update("ab")
    await clock.advance(1.0)
    assert streamer.stats.deferred == 1 and streamer.stats.rate_limited == 0
    streamer.update("abc")
    await clock.advance(1.9)
    assert len(surface.events) == 1  # waiting for the slot
    await clock.advance(0.1)
    assert (surface.events[-1].text, surface.events[-1].at) == ("abc ▌", 3.0)
    streamer.update("abcd")
    await clock.advance(1.0)  # the interval is still 1 s (a 429 would have made it 1.5 s)
    assert (surface.events[-1].text, surface.events[-1].at) == ("abcd ▌", 4.0)
    await clock.drive(streamer.finish("abcd!"))
    assert surface.visible_text() == "abcd!"


async def test_edit_bucket_429s_are_waited_out_and_the_final_is_exact() -> None:
    limits = PlatformLimits(max_chars=2000, min_edit_interval=0.1)  # too eager for the bucket
    clock, surface, streamer = make(limits, edit_bucket=(3, 2.0))
    text = "lorem ipsum " * 100
    await stream(clock, streamer, text, step=4, every=0.02)
    await clock.drive(streamer.finish(text))
    assert surface.rate_limited > 0
    assert streamer.stats.rate_limited == surface.rate_limited
    assert surface.visible_text() == text.strip()
    for rejected in surface.rejected:
        assert isinstance(rejected.error, RateLimited)
        later = [e for e in surface.events if e.at > rejected.at]
        assert all(e.at >= rejected.at + rejected.error.retry_after for e in later)


async def test_backoff_interval_is_capped_at_max_backoff() -> None:
    limits = PlatformLimits(max_chars=2000, min_edit_interval=1.0, max_backoff=2.0)
    clock, surface, streamer = make(limits)
    streamer.update("start")
    await clock.settle()
    surface.rate_limit_next(6, retry_after=0.1)
    await stream(clock, streamer, "x" * 600, step=1, every=0.05)
    assert surface.rate_limited == 6
    assert gaps(surface.calls("edit"))[-5:] == pytest.approx([2.0] * 5)
    await streamer.close()


async def test_final_is_delivered_even_when_interim_edits_are_rate_limited() -> None:
    clock, surface, streamer = make()
    streamer.update("The answer")
    await clock.settle()
    surface.rate_limit_next(8, retry_after=2.0)
    await stream(clock, streamer, "The answer is forty-two, because", step=2, every=0.1)
    refs = await clock.drive(streamer.finish("The answer is forty-two, because it is."))
    assert surface.message(refs[0]).text == "The answer is forty-two, because it is."
    assert surface.message(refs[0]).controls == (REGENERATE,)
    assert surface.rate_limited == 8


async def test_final_gives_up_after_a_bounded_number_of_rate_limits() -> None:
    clock, surface, streamer = make()
    streamer.update("partial")
    await clock.settle()
    surface.rate_limit_next(100, retry_after=1.0)
    with pytest.raises(RateLimited):
        await clock.drive(streamer.finish("partial, then more"))
    assert surface.rate_limited == 10


async def test_final_raises_a_platform_error_that_is_not_a_rate_limit() -> None:
    clock, surface, streamer = make()
    streamer.update("partial")
    await clock.settle()
    surface.fail_next(SurfaceError("404: unknown message"), on="edit")
    with pytest.raises(SurfaceError, match="unknown message"):
        await clock.drive(streamer.finish("partial, then more"))


async def test_a_zero_retry_after_does_not_make_the_streamer_hammer_the_platform() -> None:
    limits = PlatformLimits(max_chars=2000, min_edit_interval=0.0, edits_cheap=True)
    clock, surface, streamer = make(limits, latency=0.01)
    surface.rate_limit_next(100, retry_after=0.0, on="post")
    streamer.update("a")
    await clock.advance(1.0)
    assert 1 <= surface.rate_limited <= 5
    await streamer.close()


# --- interim failures ---------------------------------------------------------------------------


async def test_interim_edit_failure_is_retried_at_the_next_frame() -> None:
    clock, surface, streamer = make()
    streamer.update("one")
    await clock.settle()
    surface.fail_next(SurfaceError("500: oops"), on="edit")
    streamer.update("one two")
    await clock.advance(1.0)
    assert len(surface.rejected) == 1 and streamer.stats.errors == 1
    await clock.advance(1.0)
    assert surface.events[-1].text == "one two ▌"
    await streamer.close()


async def test_interim_gives_up_after_repeated_failures_but_the_final_lands() -> None:
    clock, surface, streamer = make()
    streamer.update("one")
    await clock.settle()
    surface.fail_next(SurfaceError("403: missing access"), times=3, on="edit")
    await stream(clock, streamer, "one two three four five six", step=3, every=1.0)
    calls_before_finish = len(surface.events) + len(surface.rejected)
    await clock.advance(10.0)
    assert len(surface.events) + len(surface.rejected) == calls_before_finish  # worker stopped
    await clock.drive(streamer.finish("one two three four five six"))
    assert surface.visible_text() == "one two three four five six"


class _BuggySurface(MemorySurface):
    async def edit(
        self, ref: MessageRef, text: str, controls: tuple[Control, ...] = (), *, final: bool = False
    ) -> None:
        raise TypeError("a bug, not a platform error")


async def test_a_bug_in_the_worker_is_raised_by_finish_not_swallowed() -> None:
    clock = FakeClock()
    streamer = ReplyStreamer(_BuggySurface(clock), clock=clock)
    streamer.update("one")
    await clock.settle()
    streamer.update("one two")
    await clock.advance(1.0)
    with pytest.raises(TypeError, match="a bug"):
        await clock.drive(streamer.finish("one two"))


# --- long replies -------------------------------------------------------------------------------


async def test_reply_of_3000_chars_with_code_arrives_as_two_messages_with_balanced_fences() -> None:
    assert 2900 <= len(REPLY_3000) <= 3100
    clock, surface, streamer = make()
    await stream(clock, streamer, REPLY_3000, step=9, every=0.05)
    refs = await clock.drive(streamer.finish(REPLY_3000))
    assert len(refs) == 2
    texts = [m.text for m in surface.messages]
    assert all(len(t) <= 2000 and balanced(t) for t in texts)
    assert squash(reassemble(texts)) == squash(REPLY_3000)
    assert surface.rejected == []


async def test_every_frame_keeps_fences_balanced_and_within_the_limit() -> None:
    clock, surface, streamer = make(PlatformLimits(max_chars=500, min_edit_interval=0.5))
    await stream(clock, streamer, REPLY_3000, step=5, every=0.05)
    await clock.drive(streamer.finish(REPLY_3000))
    assert surface.rejected == []  # the surface refuses anything over 500 characters
    assert all(balanced(e.text) for e in surface.events)
    assert squash(reassemble([m.text for m in surface.messages])) == squash(REPLY_3000)


async def test_a_blank_run_longer_than_a_message_never_makes_a_blank_message() -> None:
    clock, surface, streamer = make(PlatformLimits(max_chars=200, min_edit_interval=0.5))
    text = "Start." + "\n" * 700 + "End."
    await stream(clock, streamer, text, step=13, every=0.05)
    await clock.drive(streamer.finish(text))
    assert surface.rejected == []
    assert squash(surface.visible_text()) == "Start.End."


async def test_sealed_message_is_never_edited_after_the_next_one_is_posted() -> None:
    clock, surface, streamer = make(PlatformLimits(max_chars=600, min_edit_interval=1.0))
    text = REPLY_3000 * 2
    await stream(clock, streamer, text, step=11, every=0.05)
    refs = await clock.drive(streamer.finish(text))
    assert len(refs) >= 6
    events = surface.events
    for k in range(1, len(refs)):
        posted_at = next(i for i, e in enumerate(events) if e.kind == "post" and e.ref == refs[k])
        assert not [e for e in events[posted_at:] if e.kind == "edit" and e.ref in refs[:k]]
    for ref in refs[:-1]:
        assert not surface.message(ref).controls


async def test_stop_button_is_only_on_the_last_message_and_replaced_by_final_controls() -> None:
    clock, surface, streamer = make(PlatformLimits(max_chars=300, min_edit_interval=0.5))
    await stream(clock, streamer, PROSE, step=8, every=0.05)
    assert len(surface.messages) > 2
    assert [m.controls for m in surface.messages] == [()] * (len(surface.messages) - 1) + [(STOP,)]
    await clock.drive(streamer.finish(PROSE))
    assert [m.controls for m in surface.messages] == [()] * (len(surface.messages) - 1) + [
        (REGENERATE,)
    ]


# --- the marker ---------------------------------------------------------------------------------


async def test_marker_shows_while_streaming_and_is_gone_at_the_end() -> None:
    clock, surface, streamer = make()
    await stream(clock, streamer, "Counting: one, two, three.", step=3, every=0.4)
    assert all(e.text.endswith(" ▌") for e in surface.events)
    await clock.drive(streamer.finish("Counting: one, two, three."))
    assert surface.visible_text() == "Counting: one, two, three."


async def test_marker_sits_inside_an_open_code_block_which_is_closed_for_now() -> None:
    clock, surface, streamer = make()
    streamer.update("Look:\n```py\nprint(1)")
    await clock.settle()
    assert surface.events[-1].text == "Look:\n```py\nprint(1) ▌\n```"
    await clock.drive(streamer.finish("Look:\n```py\nprint(1)\n```"))
    assert surface.visible_text() == "Look:\n```py\nprint(1)\n```"


# --- endings ------------------------------------------------------------------------------------


async def test_stop_leaves_the_partial_text_with_a_note() -> None:
    clock, surface, streamer = make()
    await stream(clock, streamer, "Once upon a time, there was", step=4, every=0.3)
    await clock.drive(streamer.finish("Once upon a time, there was", notice="_(stopped)_"))
    assert surface.visible_text() == "Once upon a time, there was\n\n_(stopped)_"


async def test_reply_cut_off_inside_a_code_block_closes_it_before_the_notice() -> None:
    clock, surface, streamer = make()
    text = "Try:\n```sh\nls -l"
    streamer.update(text)
    await clock.settle()
    notice = "_(reply cut off: reached the token limit)_"
    await clock.drive(streamer.finish(text, notice=notice))
    assert surface.visible_text() == f"Try:\n```sh\nls -l\n```\n\n{notice}"


async def test_empty_reply_shows_the_notice_or_says_it_is_empty() -> None:
    clock, surface, streamer = make()
    refs = await clock.drive(streamer.finish(""))
    assert len(refs) == 1 and surface.visible_text() == EMPTY_REPLY
    clock, surface, streamer = make()
    await clock.drive(streamer.finish("  \n", notice="_(stopped)_"))
    assert surface.visible_text() == "_(stopped)_"


async def test_empty_reply_replaces_the_placeholder() -> None:
    clock, surface, streamer = make(placeholder="…")
    streamer.start()
    await clock.settle()
    await clock.drive(streamer.finish(""))
    assert [(e.kind, e.text, e.controls) for e in surface.events] == [
        ("post", "…", (STOP,)),
        ("edit", EMPTY_REPLY, (REGENERATE,)),
    ]


async def test_final_text_that_rewrites_the_stream_fixes_every_message() -> None:
    clock, surface, streamer = make()
    await stream(clock, streamer, REPLY_3000, step=50, every=0.05)
    assert len(surface.messages) == 2
    await clock.drive(streamer.finish("Sorry, let me start over."))
    assert [m.text for m in surface.messages] == ["Sorry, let me start over.", RETIRED]


async def test_where_the_surface_can_delete_retired_parts_are_deleted() -> None:
    clock, surface, streamer = make(dataclasses.replace(DISCORD_LIKE, can_delete=True))
    await stream(clock, streamer, REPLY_3000, step=50, every=0.05)
    [first, second] = [m.ref for m in surface.messages]
    refs = await clock.drive(streamer.finish("Sorry, let me start over."))
    assert [m.text for m in surface.messages] == ["Sorry, let me start over."]
    assert [e.ref for e in surface.calls("delete")] == [second]
    assert refs == [first] and streamer.stats.deletes == 1


async def test_every_call_says_whether_its_text_is_final() -> None:
    clock, surface, streamer = make()
    await stream(clock, streamer, REPLY_3000, step=50, every=0.05)
    await clock.drive(streamer.finish(REPLY_3000))
    live = [e for e in surface.events if STOP in e.controls]
    sealed = [e for e in surface.events if not e.controls]
    done = [e for e in surface.events if REGENERATE in e.controls]
    assert live and sealed and done
    assert not any(e.final for e in live)  # interim frames: may be deferred, soon replaced
    assert all(e.final for e in sealed + done)  # a part moved past, and the finished reply


async def test_an_append_only_surface_is_sent_only_text_that_will_not_change() -> None:
    limits = PlatformLimits(max_chars=2000, min_edit_interval=1.0, append_only=True)
    clock, surface, streamer = make(limits)
    text = "Here is code:\n\n```py\nprint(1)\nprint(2)\n"
    await stream(clock, streamer, text, step=5, every=0.6)
    sent = [e.text for e in surface.events if not e.final]
    assert sent and all("```py" not in t or not t.rstrip().endswith("```") for t in sent)
    assert all(b.startswith(a) for a, b in itertools.pairwise(sent))  # each frame only grows
    await clock.drive(streamer.finish(text))
    assert surface.visible_text() == text.strip() + "\n```"


async def test_updates_after_finish_are_ignored() -> None:
    clock, surface, streamer = make()
    streamer.update("done")
    await clock.drive(streamer.finish("done"))
    streamer.update("done, and a late token")
    await clock.advance(5.0)
    assert surface.visible_text() == "done"


async def test_close_mid_call_stops_the_worker_and_leaves_no_task() -> None:
    clock, surface, streamer = make(latency=5.0)
    streamer.update("Hello")
    await clock.settle()
    assert surface.in_flight == 1
    await streamer.close()
    assert surface.in_flight == 0 and clock.sleeping == 0
    streamer.update("Hello again")
    await clock.advance(10.0)
    assert surface.events == []


async def test_as_a_context_manager_the_streamer_cleans_up_after_an_abort() -> None:
    clock, surface, streamer = make()
    with pytest.raises(KeyError):
        async with streamer:
            streamer.update("Thinking about")
            await clock.settle()
            raise KeyError("the engine failed")
    assert [e.text for e in surface.events] == ["Thinking about ▌"]


def test_a_surface_too_small_for_text_and_marker_is_refused() -> None:
    with pytest.raises(ValueError):
        ReplyStreamer(MemorySurface(FakeClock(), PlatformLimits(max_chars=9, min_edit_interval=1)))


async def test_stats_count_what_reached_the_platform() -> None:
    clock, surface, streamer = make(PlatformLimits(max_chars=400, min_edit_interval=0.5))
    surface.rate_limit_next(2, retry_after=0.7)
    await stream(clock, streamer, PROSE, step=10, every=0.05)
    await clock.drive(streamer.finish(PROSE))
    stats = streamer.stats
    assert stats.posts == len(surface.calls("post")) == len(surface.messages)
    assert stats.edits == len(surface.calls("edit"))
    assert stats.rate_limited == 2
    assert (stats.started_at, stats.first_visible_at) == (0.0, 0.0)


# --- a reasoning model thinking before its text ---------------------------------------------------

APPEND_ONLY = PlatformLimits(
    max_chars=3500, min_edit_interval=0.3, final_interval=0.0, progress_marker="",
    append_only=True,
)  # fmt: skip


async def test_thinking_shows_in_the_reply_with_stop_until_the_text_replaces_it() -> None:
    clock, surface, streamer = make()
    for second in range(4):
        streamer.think(f"thinking… {second} s")
        await clock.advance(1.0)
    await stream(clock, streamer, "The answer is four.")
    refs = await clock.drive(streamer.finish("The answer is four."))
    first = surface.message(refs[0])
    assert first.history[0] == "_thinking… 0 s_"
    assert "_thinking… 3 s_" in first.history  # edited as the seconds went, within the pacing
    assert first.text == "The answer is four."
    assert surface.events[0].controls == (STOP,)
    assert surface.statuses == []  # a rewritable surface is never asked for a status
    assert streamer.stats.first_visible_at is not None
    assert streamer.stats.first_visible_at >= 4.0  # the thinking line is not the answer


async def test_a_late_thinking_line_after_text_changes_nothing() -> None:
    clock, surface, streamer = make()
    streamer.update("Hello")
    await clock.advance(1.0)
    streamer.think("thinking… 1 s")
    await clock.advance(1.0)
    await clock.drive(streamer.finish("Hello"))
    assert all("thinking" not in e.text for e in surface.events)


async def test_on_an_append_only_surface_thinking_is_a_status_ended_before_the_text() -> None:
    clock, surface, streamer = make(APPEND_ONLY)
    for second in range(7):
        streamer.think(f"thinking… {second} s")
        await clock.advance(1.0)
    assert surface.messages == []  # nothing that could not be taken back
    # A new line at most every STATUS_INTERVAL: 0, 2, 4 and 6 s.
    assert surface.statuses == ["thinking… 0 s", "thinking… 2 s", "thinking… 4 s", "thinking… 6 s"]
    assert all(e.controls == (STOP,) for e in surface.calls("status"))
    await stream(clock, streamer, "Four.")
    await clock.drive(streamer.finish("Four."))
    kinds = [e.kind for e in surface.events]
    assert kinds.index("status", 4) < kinds.index("post")  # "" before the first text
    assert surface.statuses[-1] == ""
    assert surface.visible_text() == "Four."


async def test_a_reply_that_ends_while_thinking_clears_its_status() -> None:
    clock, surface, streamer = make(APPEND_ONLY)
    streamer.think("thinking… 0 s")
    await clock.advance(0.5)
    await clock.drive(streamer.finish("", "_(The model thought it over but gave no answer.)_"))
    assert surface.statuses == ["thinking… 0 s", ""]
    assert surface.visible_text() == "_(The model thought it over but gave no answer.)_"


async def test_a_status_the_platform_refuses_loses_nothing() -> None:
    clock, surface, streamer = make(APPEND_ONLY)
    surface.fail_next(SurfaceError("status refused"))
    streamer.think("thinking… 0 s")
    await clock.advance(0.1)
    await stream(clock, streamer, "Still here.")
    await clock.drive(streamer.finish("Still here."))
    assert surface.visible_text() == "Still here."
