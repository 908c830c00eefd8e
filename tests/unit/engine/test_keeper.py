"""TurnKeeper: leases renewed and progress saved while turns run; which owners are surely gone."""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import AsyncIterator
from datetime import timedelta
from decimal import Decimal

import pytest

from bot.catalog import Catalog
from bot.domain import ConversationKey
from bot.engine import keeper as keeper_module
from bot.engine.keeper import TurnKeeper
from bot.ports import MessageRef
from bot.store import Store, StoredMessage, TurnProgress, TurnStore
from bot.store.turns_repo import Marks
from tests.fakes.clock import FakeClock

KEY = ConversationKey("discord", "g1", "c1", "t1")


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
async def store(clock: FakeClock) -> AsyncIterator[Store]:
    async with await Store.open("sqlite+aiosqlite:///:memory:", clock=clock) as store:
        yield store


async def _streaming(store: Store, owner: str, provider: str | None = None) -> StoredMessage:
    conversation = await store.ensure_conversation(KEY, "u1", "hello")
    question = await store.add_message(conversation.id, "user", "q", user_id="u1")
    turn = await store.add_message(
        conversation.id, "assistant", "", status="streaming", parent_id=question.id,
        model="llama-3.1-8b", provider=provider, owner=owner, lease=timedelta(seconds=30),
        prompt_tokens=1000,
    )  # fmt: skip
    return turn


def _owner(pid: int) -> str:
    return f"{keeper_module._HOST}.{pid}.0badc0de"


async def _exited_pid() -> int:
    process = await asyncio.create_subprocess_exec(sys.executable, "-c", "pass")
    await process.wait()
    return process.pid


async def test_a_running_turn_keeps_its_lease_and_saves_what_it_shows(
    store: Store, clock: FakeClock
) -> None:
    keeper = TurnKeeper(store, Catalog.load(), clock=clock, lease_seconds=9)
    other = TurnKeeper(store, Catalog.load(), clock=clock, lease_seconds=9)
    turn = await store.add_message(
        (await store.ensure_conversation(KEY, "u1", "t")).id, "assistant", "",
        status="streaming", owner=keeper.owner, lease=keeper.lease,
    )  # fmt: skip
    shown = {"text": "", "refs": ()}

    def progress() -> TurnProgress:
        return TurnProgress(turn.id, str(shown["text"]), tuple(shown["refs"]), "workers-ai")

    keeper.track(turn.id, progress)
    shown["text"], shown["refs"] = "Half", (MessageRef("m1", "c1"),)
    for _ in range(10):  # 30 s of virtual time, three leases
        await clock.advance(3)
        assert await other.recover() == []  # never taken while it is renewed
    saved = await store.get_message(turn.id)
    assert saved is not None and (saved.content, saved.provider) == ("Half", "workers-ai")
    keeper.untrack(turn.id)  # the process goes quiet: nothing renews it any more
    await clock.advance(10)
    (taken,) = await other.recover()
    assert (taken.message.id, taken.refs) == (turn.id, (MessageRef("m1", "c1"),))
    await keeper.close()


async def test_a_turn_of_a_process_that_exited_here_is_taken_at_once_and_billed(
    store: Store,
) -> None:
    catalog = Catalog.load()
    entry = catalog.resolve("llama-3.1-8b")
    dead = await _streaming(store, _owner(await _exited_pid()), provider=entry.provider)
    keeper = TurnKeeper(store, catalog)
    (taken,) = await keeper.recover()  # its 30 s lease has not run out: the pid tells
    assert taken.message.id == dead.id
    assert (taken.message.prompt_tokens, taken.message.completion_tokens) == (1000, 0)
    assert taken.message.cost is not None and taken.message.cost > Decimal(0)


async def test_turns_of_live_or_unknown_owners_wait_for_their_lease(store: Store) -> None:
    sleeper = await asyncio.create_subprocess_exec(
        sys.executable, "-c", "import time; time.sleep(60)"
    )
    try:
        owners = [
            _owner(sleeper.pid),  # alive on this machine
            f"0123abcd.{await _exited_pid()}.0badc0de",  # another machine's pid means nothing
            "legacy-owner-id",
            TurnKeeper(store, Catalog.load()).owner,  # another engine of this very process
        ]
        for owner in owners:
            await _streaming(store, owner)
        keeper = TurnKeeper(store, Catalog.load())
        assert await keeper.recover() == []
    finally:
        sleeper.kill()
        await sleeper.wait()


async def test_an_owner_id_names_this_pid_space_and_pid_and_fits_its_column(
    store: Store,
) -> None:
    owner = TurnKeeper(store, Catalog.load()).owner
    host, pid, _ = owner.split(".")
    assert (host, int(pid)) == (keeper_module._HOST, os.getpid())
    assert len(owner) <= 32


async def test_a_stop_marked_by_another_replica_is_handed_to_the_owner(store: Store) -> None:
    keeper = TurnKeeper(store, Catalog.load())
    turn, quiet = await _streaming(store, keeper.owner), await _streaming(store, keeper.owner)
    told: list[int] = []
    keeper.on_stop = told.append
    keeper._live = {t.id: (lambda t=t: TurnProgress(t.id, "so far", ())) for t in (turn, quiet)}
    assert await keeper.look_for_marks() == Marks() and told == []
    assert await TurnStore(store).request_stop(turn.id)  # by the replica that got the click
    assert await keeper.look_for_marks() == Marks([turn.id]) and told == [turn.id]
    del keeper._live[turn.id]  # its reply ended here meanwhile: not handed on
    assert await keeper.look_for_marks() == Marks() and told == [turn.id]


async def test_the_owner_looks_for_stops_every_poll_while_it_runs_turns(
    store: Store, clock: FakeClock
) -> None:
    keeper = TurnKeeper(store, Catalog.load(), clock=clock, stop_poll=0.5)
    looks: list[tuple[float, list[int]]] = []

    async def marks_among(ids: list[int]) -> Marks:
        looks.append((clock.now(), sorted(ids)))
        return Marks([7]) if clock.now() >= 1.0 else Marks()

    keeper._turns.marks_among = marks_among  # type: ignore[method-assign]
    told: list[int] = []
    keeper.on_stop = told.append
    keeper.track(7, lambda: TurnProgress(7, "", ()))
    keeper.track(8, lambda: TurnProgress(8, "", ()))
    try:
        await clock.advance(1.2)
        assert looks == [(0.5, [7, 8]), (1.0, [7, 8])] and told == [7]
        keeper.untrack(7)
        keeper.untrack(8)
        await clock.advance(2.0)
        assert len(looks) == 2  # nothing runs here: no more looks
    finally:
        await keeper.close()


async def test_an_answer_given_on_another_replica_is_handed_to_the_owner_once(
    store: Store,
) -> None:
    keeper = TurnKeeper(store, Catalog.load())
    turn = await _streaming(store, keeper.owner)
    answers: list[tuple[int, bool]] = []
    keeper.on_answer = lambda turn_id, approved: answers.append((turn_id, approved))
    keeper._live = {turn.id: lambda: TurnProgress(turn.id, "", ())}
    elsewhere = TurnStore(store)  # the replica that got the click
    assert not await elsewhere.answer(turn.id, True)  # nothing waits yet
    await keeper.set_waiting(turn.id, True)
    assert await elsewhere.waiting(turn.id)
    assert await elsewhere.answer(turn.id, False)
    assert not await elsewhere.answer(turn.id, True)  # the first answer counts
    assert (await keeper.look_for_marks()).answers == {turn.id: False}
    assert answers == [(turn.id, False)]
    assert await keeper.look_for_marks() == Marks() and answers == [(turn.id, False)]
    assert not await elsewhere.waiting(turn.id)
