"""The test doubles keep their promises: virtual time is ordered, the surface is strict."""

from __future__ import annotations

import asyncio

import pytest

from bot.ports import Control, MessageRef, PlatformLimits, RateLimited, SurfaceError
from tests.fakes.clock import WALL_START, FakeClock
from tests.fakes.surface import MemorySurface


async def test_advance_wakes_sleepers_in_deadline_order_at_their_deadlines() -> None:
    clock = FakeClock()
    woke: list[tuple[str, float]] = []

    async def nap(name: str, seconds: float) -> None:
        await clock.sleep(seconds)
        woke.append((name, clock.now()))

    tasks = [asyncio.create_task(nap(n, s)) for n, s in (("late", 3.0), ("early", 1.0))]
    await clock.advance(2.0)
    assert woke == [("early", 1.0)] and clock.now() == 2.0
    await clock.advance(5.0)
    assert woke == [("early", 1.0), ("late", 3.0)]
    assert clock.wall() == WALL_START.replace(second=7)
    await asyncio.gather(*tasks)


async def test_drive_jumps_time_and_reports_a_task_blocked_off_the_clock() -> None:
    clock = FakeClock()

    async def slow() -> str:
        await clock.sleep(120.0)
        return "done"

    assert await clock.drive(slow()) == "done"
    assert clock.now() == 120.0
    with pytest.raises(RuntimeError, match="something other than the clock"):
        await clock.drive(asyncio.Event().wait())


async def test_surface_refuses_what_a_platform_refuses() -> None:
    surface = MemorySurface(FakeClock(), PlatformLimits(max_chars=10, min_edit_interval=1.0))
    with pytest.raises(SurfaceError):
        await surface.post("x" * 11)
    with pytest.raises(SurfaceError):
        await surface.post("  \n ")
    with pytest.raises(SurfaceError):
        await surface.edit(MessageRef("nope"), "hi")
    with pytest.raises(SurfaceError):
        await surface.post("hi", tuple(Control("stop", str(i)) for i in range(6)))
    assert surface.events == [] and len(surface.rejected) == 4


async def test_surface_edit_bucket_answers_429_with_the_time_to_wait() -> None:
    clock = FakeClock()
    surface = MemorySurface(clock, edit_bucket=(2, 5.0))
    ref = await surface.post("a")
    await surface.edit(ref, "b")
    await clock.advance(1.0)
    await surface.edit(ref, "c")
    with pytest.raises(RateLimited) as caught:
        await surface.edit(ref, "d")
    assert caught.value.retry_after == pytest.approx(4.0)
    await clock.advance(4.0)
    await surface.edit(ref, "d")
    assert surface.message(ref).history == ["a", "b", "c", "d"]


async def test_surface_injected_faults_hit_only_their_kind_in_order() -> None:
    surface = MemorySurface(FakeClock())
    surface.rate_limit_next(1, retry_after=1.5)
    surface.fail_next(SurfaceError("boom"), on="post")
    with pytest.raises(SurfaceError, match="boom"):
        await surface.post("a")
    ref = await surface.post("a")
    with pytest.raises(RateLimited):
        await surface.edit(ref, "b")
    await surface.edit(ref, "b")
    assert surface.visible_text() == "b" and surface.rate_limited == 1


async def test_surface_latency_makes_calls_overlap_observably() -> None:
    clock = FakeClock()
    surface = MemorySurface(clock, latency=1.0)
    calls = [asyncio.create_task(surface.post(t)) for t in ("a", "b")]
    await clock.settle()
    assert surface.in_flight == 2
    await clock.advance(1.0)
    await asyncio.gather(*calls)
    assert surface.max_in_flight == 2 and [e.at for e in surface.events] == [1.0, 1.0]
