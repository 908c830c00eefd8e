"""TeamBudget with a burst: a quiet key spends it at once, a busy one keeps the steady rate, and
no window of any shape sees more than the limit the budget was made within."""

from __future__ import annotations

import itertools

import pytest

from bot.pacing import SPREAD, TeamBudget
from bot.ports import Deferred


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def busy(budget: TeamBudget, clock: Clock, seconds: float, *, pause: float = 0.0) -> list[float]:
    """Claim as often as the budget lets for `seconds` (resting `pause` after each call)."""
    slots = []
    while clock.now < seconds:
        clock.now += budget.claim("T1", max_wait=float("inf"))
        slots.append(clock.now)
        clock.now += pause
    return slots


def most_in_a_window(slots: list[float], window: float) -> int:
    """The most calls in any `window` seconds: a sliding window, which a fixed one never beats."""
    return max(sum(1 for t in slots if start <= t < start + window) for start in slots)


@pytest.mark.parametrize(
    ("limit", "window", "pause"),
    [(90, 60.0, 0.0), (45, 60.0, 0.0), (5, 5.0, 0.0), (5, 2.0, 0.0), (90, 60.0, 7.0)],
)
def test_never_more_than_the_limit_in_any_window_whatever_its_shape(
    limit: int, window: float, pause: float
) -> None:
    clock = Clock()
    budget = TeamBudget.within(limit, window, clock=clock)
    slots = busy(budget, clock, 10 * window, pause=pause)
    assert most_in_a_window(slots, window) <= limit
    if not pause:  # a busy key waits no longer than the steady spacing, and keeps that rate
        assert max(b - a for a, b in itertools.pairwise(slots)) == pytest.approx(budget.spacing)
        assert len(slots) >= 10 * (limit - budget.burst)


def test_a_quiet_key_spends_its_burst_at_once_then_the_steady_rate() -> None:
    clock = Clock()
    budget = TeamBudget.within(100, 60.0, clock=clock)
    assert (budget.burst, budget.spacing) == (25, pytest.approx(0.8))
    waits = [budget.claim("T1", max_wait=float("inf")) for _ in range(27)]
    assert waits[:25] == pytest.approx([0.0] * 25) and waits[25:] == pytest.approx([0.8, 1.6])
    clock.now = 60.0  # quiet for a minute: the burst is back
    assert budget.claim("T1", max_wait=0.0) == 0.0
    assert budget.wait("T2") == 0.0  # keys are apart


def test_no_burst_is_the_plain_even_spacing() -> None:
    clock = Clock()
    budget = TeamBudget(60, clock=clock)
    assert [budget.claim("T1", max_wait=5) for _ in range(3)] == [0.0, 1.0, 2.0]


def test_a_slot_too_far_off_is_deferred_and_reserves_nothing_and_a_429_holds_the_key() -> None:
    clock = Clock()
    budget = TeamBudget(60, burst=2, clock=clock)
    assert budget.claim("T1", max_wait=0) == 0 and budget.claim("T1", max_wait=0) == 0
    with pytest.raises(Deferred) as deferred:
        budget.claim("T1", max_wait=0.5)
    assert deferred.value.retry_after == pytest.approx(1.0)
    assert budget.wait("T1") == pytest.approx(1.0)  # the refusal reserved nothing
    budget.back_off("T2", 3.0)
    assert budget.wait("T2") == pytest.approx(3.0)
    clock.now = 3.0
    assert budget.claim("T2", max_wait=0) == 0.0
    assert budget.wait("T2") == pytest.approx(1.0)  # after a 429, no burst


@pytest.mark.parametrize(
    ("limit", "window", "parts"), [(50, 60.0, 2), (100, 60.0, 3), (45, 1.0, 2)]
)
def test_processes_at_their_shares_together_stay_within_the_whole_limit(
    limit: int, window: float, parts: int
) -> None:
    """Replicas of one Slack app (or one Discord bot) each pace at `share(parts)`: their calls
    together, each process as busy as its share lets it be, never exceed the limit in a window."""
    clocks = [Clock() for _ in range(parts)]
    budgets = [TeamBudget.within(limit, window, clock=clock) for clock in clocks]
    whole = (budgets[0].spacing, budgets[0].burst)
    for budget in budgets:
        budget.share(parts)
    assert budgets[0].spacing == pytest.approx(whole[0] * parts)
    assert budgets[0].burst == max(whole[1] // parts, 1)
    slots = sorted(
        t
        for budget, clock in zip(budgets, clocks, strict=True)
        for t in busy(budget, clock, 10 * window)
    )
    assert most_in_a_window(slots, window) <= limit
    assert len(slots) >= 10 * (limit - whole[1]) * 0.95  # the shares add up to the whole rate
    budgets[0].share(1)  # the others left: the whole budget again
    assert (budgets[0].spacing, budgets[0].burst) == (pytest.approx(whole[0]), whole[1])


def go(budget: TeamBudget, clock: Clock, place: float) -> float | None:
    """A holder comes back at its place and claims, as the Slack surface does: the time its
    call went out, or None when the budget had no slot then (it is deferred to the next)."""
    clock.now = max(clock.now, place)
    try:
        clock.now += budget.claim("T1", max_wait=0.05)
    except Deferred:
        return None
    return clock.now


def test_interim_places_in_line_are_taken_in_turn_and_spread_the_burst() -> None:
    """Ten replies in a quiet workspace, each holding one place at a time: they take turns, and
    the burst lasts about SPREAD seconds of them instead of going to whoever asked first."""
    clock = Clock()
    budget = TeamBudget.within(100, 60.0, clock=clock)
    places = {h: budget.reserve("T1") for h in range(10)}  # all ask at once
    assert sorted(places, key=places.__getitem__) == list(range(10))  # in the order asked
    gaps = [b - a for a, b in itertools.pairwise(sorted(places.values()))]
    assert gaps == pytest.approx([1 / (1 / 0.8 + 24 / SPREAD)] * 9)  # steady + burst / SPREAD
    turns: dict[int, list[float]] = {h: [] for h in places}
    while clock.now < 60.0:
        holder = min(places, key=places.__getitem__)  # the next place due comes back ...
        sent = go(budget, clock, places[holder])
        if sent is None:  # no slot at its place: the budget's next, still ahead of the rest
            places[holder] = clock.now + budget.wait("T1")
            continue
        turns[holder].append(sent)
        places[holder] = budget.reserve("T1")  # ... and its reply gets back in line
    counts = [len(t) for t in turns.values()]
    assert max(counts) - min(counts) <= 1  # nobody starves, nobody gets ahead
    for times in turns.values():
        early = [b - a for a, b in itertools.pairwise(times) if b < SPREAD]
        assert max(early) < 3.0  # while the burst lasts: text at least every 3 s each
        late = [b - a for a, b in itertools.pairwise(times) if b > 30.0]
        assert max(late) == pytest.approx(10 * budget.spacing, rel=0.1)  # then the steady rate
    slots = sorted(t for times in turns.values() for t in times)
    assert most_in_a_window(slots, 60.0) <= 100
    assert budget.wait("T1") <= budget.spacing  # a final text waits a spacing at most


@pytest.mark.parametrize(("limit", "window"), [(90, 60.0), (45, 60.0), (5, 5.0), (5, 2.0)])
def test_places_and_final_claims_together_stay_within_the_limit(limit: int, window: float) -> None:
    """Three replies take turns while a fourth's final text claims ahead of them now and then:
    no window sees more than the limit, and the final text never waits behind the line."""
    clock = Clock()
    budget = TeamBudget.within(limit, window, clock=clock)
    places = [budget.reserve("T1") for _ in range(3)]
    slots, final_waits = [], []
    for call in itertools.count():
        if clock.now >= 10 * window:
            break
        if call % 5 == 4:
            final_waits.append(budget.claim("T1", max_wait=float("inf")))
            clock.now += final_waits[-1]
            slots.append(clock.now)
            continue
        holder = min(range(3), key=places.__getitem__)
        sent = go(budget, clock, places[holder])
        if sent is None:
            places[holder] = clock.now + budget.wait("T1")
            continue
        slots.append(sent)
        places[holder] = budget.reserve("T1")
    assert most_in_a_window(slots, window) <= limit
    assert max(final_waits) <= budget.spacing + 1e-9


def test_a_429_moves_the_line_back_too() -> None:
    clock = Clock()
    budget = TeamBudget(60, burst=5, clock=clock)
    assert budget.reserve("T1") == 0.0
    budget.back_off("T1", 3.0)
    assert budget.reserve("T1") >= 3.0
