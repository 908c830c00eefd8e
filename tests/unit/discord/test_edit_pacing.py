"""RateLimitWatch details the streamer depends on: an applied edit returns at once, and no second
ever carries more paced requests than the rate allows, however late sleepers wake."""

from __future__ import annotations

import asyncio
import time
from types import SimpleNamespace
from typing import Any

import pytest
import yarl

from adapters.discord.surface import (
    DEFAULT_EDIT_INTERVAL,
    GLOBAL,
    DiscordSurface,
    RateLimitWatch,
    in_priority,
    loggable,
    webhook_key,
)
from bot.pacing import AGING, LATER, NORMAL, URGENT, TeamBudget
from bot.ports import RateLimited

API = "https://discord.com/api/v10"


TOKEN = "aW50ZXJhY3Rpb246" + "x" * 120
WEBHOOK_EDIT = f"/webhooks/99/{TOKEN}/messages/2"


def _end(
    watch: RateLimitWatch,
    status: int,
    headers: dict[str, str] | None = None,
    path: str = "/channels/1/messages/2",
) -> Any:
    """What aiohttp's on_request_end hands the trace for PATCH `path` (a message edit)."""
    response = SimpleNamespace(status=status, headers=headers or {})
    url = yarl.URL(f"{API}{path}")
    return watch._on_end(None, None, SimpleNamespace(method="PATCH", url=url, response=response))  # type: ignore[arg-type]


async def test_an_applied_edit_returns_before_discord_py_finishes_its_bucket_sleep() -> None:
    watch = RateLimitWatch()
    slept = asyncio.Event()

    async def edit_then_sleep_out_the_bucket() -> str:
        await _end(watch, 200)  # Discord answered 2xx: the edit is on screen
        await slept.wait()  # discord.py now sleeps until the emptied bucket resets
        return "message"

    result = await asyncio.wait_for(
        watch.call("PATCH", "1", "2", edit_then_sleep_out_the_bucket(), applied_is_enough=True), 1
    )
    assert result is None
    [finishing] = watch._finishing  # still running, and still referenced
    slept.set()
    await asyncio.wait_for(finishing, 1)
    assert not watch._finishing


async def test_without_applied_is_enough_the_call_waits_for_its_result() -> None:
    watch = RateLimitWatch()
    slept = asyncio.Event()

    async def post() -> str:
        await _end(watch, 200)
        await slept.wait()
        return "message"

    call = asyncio.create_task(watch.call("PATCH", "1", "2", post()))
    await asyncio.sleep(0.01)
    assert not call.done()
    slept.set()
    assert await asyncio.wait_for(call, 1) == "message"


async def test_a_429_still_cancels_the_call_and_raises_rate_limited() -> None:
    watch = RateLimitWatch()
    cancelled = asyncio.Event()

    async def edit() -> None:
        await _end(watch, 429, {"Retry-After": "2", "X-RateLimit-Reset-After": "1.5"})
        try:
            await asyncio.sleep(30)  # discord.py would sleep and retry silently
        except asyncio.CancelledError:
            cancelled.set()
            raise

    try:
        await watch.call("PATCH", "1", "2", edit(), applied_is_enough=True)
    except RateLimited as exc:
        assert exc.retry_after == 1.5
    else:
        raise AssertionError("a 429 must reach the streamer")
    assert cancelled.is_set()


async def test_a_429_on_an_interaction_webhook_edit_reaches_the_call_and_hides_the_token(
    caplog: pytest.LogCaptureFixture,
) -> None:
    watch = RateLimitWatch()

    async def edit() -> None:
        await _end(watch, 429, {"X-RateLimit-Reset-After": "0.7"}, WEBHOOK_EDIT)
        await asyncio.sleep(30)

    with caplog.at_level("INFO", logger="parley.discord"), pytest.raises(RateLimited) as raised:
        await watch.call("PATCH", webhook_key("2"), "2", edit(), applied_is_enough=True)
    assert raised.value.retry_after == 0.7
    assert TOKEN not in caplog.text and "/webhooks/99/[token]/messages/2" in caplog.text


async def test_webhook_edits_learn_their_own_pacing_not_their_channels() -> None:
    watch = RateLimitWatch()
    headers = {"X-RateLimit-Remaining": "1", "X-RateLimit-Reset-After": "4.0"}
    await _end(watch, 200, headers, WEBHOOK_EDIT)
    assert watch.pacing.interval(webhook_key("2")) == pytest.approx(
        3.0
    )  # the last, a second before 4 s
    assert (
        watch.pacing.final_interval(webhook_key("2")) == 0.0
    )  # ... unless the final text takes it
    assert watch.pacing.interval("1") == DEFAULT_EDIT_INTERVAL
    assert (
        watch.pacing.final_interval("1") is None
    )  # nothing learnt: the streamer paces it as interim


@pytest.mark.parametrize(
    ("remaining", "reset_after", "interval", "final"),
    [
        ("4", "5.0", 1.0, 0.0),  # evenly: one share of the window kept till the last
        ("2", "6.0", 2.5, 0.0),  # the margin before the refill is at most a second
        ("1", "2.0", 1.0, 0.0),  # the one in hand goes as an interim a share before the refill
        ("0", "1.5", 1.55, 1.55),  # none left: nothing, not even the final, until the refill
        ("9", "0.5", 0.2, 0.0),  # never faster than the floor
    ],
)
async def test_edits_are_paced_from_what_is_left_of_the_window_keeping_one_for_the_final(
    remaining: str, reset_after: str, interval: float, final: float
) -> None:
    watch = RateLimitWatch()
    headers = {"X-RateLimit-Remaining": remaining, "X-RateLimit-Reset-After": reset_after}
    await _end(watch, 200, headers, WEBHOOK_EDIT)
    assert watch.pacing.interval(webhook_key("2")) == pytest.approx(interval)
    assert watch.pacing.final_interval(webhook_key("2")) == pytest.approx(final)


def test_loggable_paths_keep_their_shape_but_not_the_token() -> None:
    assert loggable(f"/api/v10/interactions/5/{TOKEN}/callback") == (
        "/api/v10/interactions/5/[token]/callback"
    )
    assert loggable("/api/v10/channels/1/messages/2") == "/api/v10/channels/1/messages/2"


async def test_requests_wait_for_their_slot_before_they_ask_for_a_connection() -> None:
    budget = TeamBudget(10 * 60)  # ten a second
    watch = RateLimitWatch(budget=budget, api_base=API)
    first, second = SimpleNamespace(), SimpleNamespace()
    params = SimpleNamespace(url=yarl.URL(f"{API}/channels/1/messages"))
    await watch._on_start(None, first, params)  # type: ignore[arg-type]
    assert budget.wait(GLOBAL) == pytest.approx(0.1, abs=0.02)  # taken: no socket held yet
    waiting = asyncio.create_task(watch._on_start(None, second, params))  # type: ignore[arg-type]
    await asyncio.sleep(0.02)
    assert not waiting.done()  # its slot is 0.1 s away: it waits without a connection
    assert watch.global_wait() == pytest.approx(0.18, abs=0.02)  # and the queue shows
    await asyncio.wait_for(waiting, 1)
    webhook = SimpleNamespace()
    url = yarl.URL(f"{API}/webhooks/1/tok/messages/@original")
    before = budget.wait(GLOBAL)
    await watch._on_start(None, webhook, SimpleNamespace(url=url))  # type: ignore[arg-type]
    await watch._on_connection(None, webhook, None)  # type: ignore[arg-type]
    assert budget.wait(GLOBAL) <= before  # exempt: took no slot


async def test_a_replys_first_and_final_text_take_the_next_slot_and_threads_wait() -> None:
    """Waiting for global slots: the reply's text goes before what was queued earlier, and a
    thread's opening after everything, but not for ever (it ages)."""
    watch = RateLimitWatch(budget=TeamBudget(20 * 60), api_base=API)  # twenty a second
    params = SimpleNamespace(url=yarl.URL(f"{API}/channels/1/messages"))
    order: list[str] = []

    async def request(name: str) -> None:
        await watch._on_start(None, SimpleNamespace(), params)  # type: ignore[arg-type]
        order.append(name)

    await request("first")  # takes the free slot: the rest wait
    waiting = [in_priority(LATER, request("thread"))]
    await asyncio.sleep(0)
    waiting += [in_priority(NORMAL, request(f"edit {n}")) for n in range(3)]
    await asyncio.sleep(0)
    waiting.append(in_priority(URGENT, request("final")))
    await asyncio.wait_for(asyncio.gather(*waiting), 2)
    assert order == ["first", "final", "edit 0", "edit 1", "edit 2", "thread"]

    # Requests arriving faster than the budget: the thread still goes, ahead of every request
    # that arrived more than AGING seconds after it.
    arrived: dict[str, float] = {}
    served: dict[str, float] = {}

    async def timed(name: str) -> None:
        arrived[name] = time.monotonic()
        await request(name)
        served[name] = time.monotonic()

    waiting = [in_priority(LATER, timed("thread"))]
    for n in range(75):  # 25 a second for 3 s
        waiting.append(in_priority(NORMAL, timed(f"edit {n}")))
        await asyncio.sleep(0.04)
    await asyncio.wait_for(asyncio.gather(*waiting), 10)
    after = [n for n in served if served[n] > served["thread"]]
    assert after  # it did not wait for the queue to empty
    # what went after it arrived about AGING seconds after it (a step of priority) or later
    assert all(arrived[n] - arrived["thread"] > AGING * (LATER - NORMAL) - 0.1 for n in after)


async def test_late_wakers_never_put_more_than_the_rate_into_one_second() -> None:
    watch = RateLimitWatch(budget=TeamBudget(10 * 60), api_base=API)  # ten a second
    assert watch.window is not None
    params = SimpleNamespace(url=yarl.URL(f"{API}/channels/1/messages"))
    # Ten requests went out 0.95 s ago, all at once (their sleeps ended late, together).
    watch.window.sent.extend([time.monotonic() - 0.95] * 10)
    context = SimpleNamespace()
    await watch._on_start(None, context, params)  # type: ignore[arg-type]
    started = time.monotonic()
    await watch._on_connection(None, context, None)  # type: ignore[arg-type]
    assert time.monotonic() - started >= 0.04  # it waited for the oldest to leave the second
    assert len(watch.window.sent) == 1
    unpaced = SimpleNamespace()  # a webhook or the gateway: never held back
    watch.window.sent.extend([time.monotonic()] * 10)
    started = time.monotonic()
    await watch._on_connection(None, unpaced, None)  # type: ignore[arg-type]
    assert time.monotonic() - started < 0.04


async def test_an_emptied_bucket_is_waited_for_from_when_it_refills_not_from_the_ask() -> None:
    """An edit asked for at t, queued 0.3 s for a global slot, empties its channel's bucket: the
    next call must wait for the refill Discord named, which is 0.3 s further from t than from
    when Discord answered (counted from the ask, it came 14 ms early: a 429 at fifty replies)."""
    watch = RateLimitWatch()
    surface = DiscordSurface(object(), "1", watch)  # type: ignore[arg-type]
    surface._asked = time.monotonic() - 0.3  # as if its last edit waited 0.3 s in the queue
    headers = {"X-RateLimit-Remaining": "0", "X-RateLimit-Reset-After": "1.0"}
    await _end(watch, 200, headers, "/channels/1/messages/2")
    limits = surface.limits
    assert limits.min_edit_interval == pytest.approx(1.35, abs=0.02)
    assert limits.final_interval == pytest.approx(1.35, abs=0.02)
    headers = {"X-RateLimit-Remaining": "4", "X-RateLimit-Reset-After": "5.0"}
    await _end(watch, 200, headers, "/channels/1/messages/2")
    assert surface.limits.min_edit_interval == pytest.approx(1.0)  # refilled: the usual pace
    assert surface.limits.final_interval == 0.0
