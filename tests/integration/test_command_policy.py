"""The conversation commands' policy table (tests/command_policy.py) through the core's handlers
and through the console; the platforms run the same table in tests/integration/discord/ and
tests/integration/slack/."""

from __future__ import annotations

import io
import itertools
from collections.abc import AsyncIterator
from datetime import timedelta

import pytest
import pytest_asyncio

from adapters.console import Console
from bot.app import App
from bot.clock import SYSTEM_CLOCK
from bot.commands import ConversationCommands, PersonaCommands
from bot.commands.controls import (
    NOT_WAITING,
    NOT_YOURS_APPROVE,
    NOT_YOURS_STOP,
    ReplyControls,
)
from bot.domain import Caller, ConversationKey
from bot.engine.personas import PersonaSpec
from bot.engine.running import STOP_ABANDONED
from bot.errors import UserError
from bot.store import TurnStore
from tests.command_policy import (
    CONTROL_ROWS,
    PERSONA,
    REGENERATED,
    STALE_ID,
    ControlRow,
    Row,
    agrees,
    answers,
    case_id,
    cases,
    changed_as_expected,
    control_id,
    reply_of,
    seed,
    snapshot,
    typed_garbage,
)
from tests.fakes.llm_server import LLMFake, llm_fake, workers_stream
from tests.fakes.surface import MemorySurface
from tests.support import settings_for

__all__ = ["llm_fake"]

OWNER, OTHER, ADMIN = "u-owner", "u-other", "u-admin"
_threads = itertools.count(1)


@pytest_asyncio.fixture
async def app(llm_fake: LLMFake) -> AsyncIterator[App]:
    built = await App.build(settings_for(llm_fake))
    try:
        yield built
    finally:
        await built.close()


async def _persona(app: App, key: ConversationKey) -> None:
    assert app.personas is not None
    spec = PersonaSpec(PERSONA, "Talk like a pirate.")
    if not any(p.name == PERSONA for p in await app.personas.list(key)):
        await app.personas.create(key, ADMIN, spec, is_admin=True)


@pytest.mark.parametrize("case", cases(), ids=case_id)
async def test_the_core_handlers_follow_the_table(app: App, case: tuple[Row, str]) -> None:
    row, command = case
    key = ConversationKey("slack", "T1", "C1", f"{next(_threads)}.000")
    conversation = await app.store.ensure_conversation(key, OWNER, "a topic")
    await seed(app.store, conversation, archived=row.archived)
    await _persona(app, key)
    user = {"owner": OWNER, "other": OTHER, "admin": ADMIN}[row.who]
    place, named = key, None
    if row.how != "place":
        tenant = "T2" if row.how == "other tenant" else "T1"
        place = ConversationKey("slack", tenant, "C9", "")
        named = {"stale id": STALE_ID, "garbage id": 2**64}.get(row.how, conversation.id)
    caller = Caller.at(place, user, is_admin=row.who == "admin")
    before = await snapshot(app.store, conversation.id)
    conversations = ConversationCommands(app.conversations)
    try:
        if command == "persona":
            reply = await PersonaCommands(app.personas).use(caller, place, PERSONA)
        else:
            reply = await getattr(conversations, command)(caller, place, named)
        shown = reply.plain()
    except UserError as exc:
        shown = str(exc)
    assert agrees(shown, row.expect[command]), shown
    assert changed_as_expected(row, command, before, await snapshot(app.store, conversation.id))


CONSOLE_LINES = {"archive": "/archive", "export": "/export", "persona": f"/persona use {PERSONA}"}


@pytest.mark.parametrize(
    "case", [c for c in cases(platform_admins=False) if c[1] in CONSOLE_LINES], ids=case_id
)
async def test_the_console_follows_the_table(
    app: App, case: tuple[Row, str], tmp_path: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The console's user is its tenant's admin and has one tenant, so only the owner's rows
    apply (an id from another tenant is still not found). Its /new is a new conversation, not a
    fresh context, so it is not in this table."""
    row, command = case
    monkeypatch.chdir(tmp_path)  # type: ignore[arg-type]
    out = io.StringIO()
    console = Console(app, out)
    tenant = "elsewhere" if row.how == "other tenant" else "local"
    key = ConversationKey("console", tenant, console.user, f"t{next(_threads)}")
    conversation = await app.store.ensure_conversation(key, console.user, "a topic")
    await seed(app.store, conversation, archived=row.archived)
    await _persona(app, console.key)
    console.key = key if row.how == "place" else console.key
    line = CONSOLE_LINES[command]
    if row.how != "place":
        line += " " + {"stale id": str(STALE_ID), "garbage id": "12abc"}.get(
            row.how, str(conversation.id)
        )
    before = await snapshot(app.store, conversation.id)
    await console._command(line)
    shown = out.getvalue()
    expected = row.expect[command]
    if row.how == "garbage id":
        expected = typed_garbage(command)
    assert agrees(shown, expected), shown
    assert changed_as_expected(row, command, before, await snapshot(app.store, conversation.id))


async def test_stop_on_a_reply_another_replica_runs_marks_it_for_that_replica(app: App) -> None:
    """Another process (its own owner id, its lease live) streams the reply: only its asker's
    Stop marks it, and once that process is gone (its lease lapsed) Stop says so instead."""
    key = ConversationKey("slack", "T1", "C1", f"{next(_threads)}.000")
    conversation = await app.store.ensure_conversation(key, OWNER, "a topic")
    question = await app.store.add_message(conversation.id, "user", "q", user_id=OWNER)
    running = await app.store.add_message(
        conversation.id, "assistant", "so far", status="streaming", parent_id=question.id,
        owner="elsewhere.1.0badc0de", lease=timedelta(seconds=30),
    )  # fmt: skip
    lapsed = await app.store.add_message(
        conversation.id, "assistant", "", status="streaming", parent_id=question.id,
        owner="gone.2.0badc0de", lease=timedelta(seconds=-1),
    )  # fmt: skip
    controls, turns = ReplyControls(app.engine, app.store), TurnStore(app.store)
    other = await controls.stop(Caller("slack", "T1", OTHER), running.id)
    assert other is not None and other.plain() == NOT_YOURS_STOP
    assert (await turns.marks_among([running.id])).stops == []
    assert await controls.stop(Caller("slack", "T1", OWNER), running.id) is None
    assert (await turns.marks_among([running.id, lapsed.id])).stops == [running.id]
    late = await controls.stop(Caller("slack", "T1", OWNER), lapsed.id)
    assert late is not None and late.plain() == STOP_ABANDONED

    # Approve / Deny of a call that waits there: the asker's first answer only.
    owner, stranger = Caller("slack", "T1", OWNER), Caller("slack", "T1", OTHER)
    said = await controls.answer(owner, running.id, approve=True)
    assert said is not None and said.plain() == NOT_WAITING  # nothing waits yet
    await turns.set_waiting(running.id, True)
    await turns.set_waiting(lapsed.id, True)
    said = await controls.answer(stranger, running.id, approve=True)
    assert said is not None and said.plain() == NOT_YOURS_APPROVE
    outside = await controls.answer(Caller("slack", "T2", OWNER), running.id, approve=True)
    assert outside is not None and outside.plain() == NOT_WAITING  # another tenant: unknown
    assert await controls.answer(owner, running.id, approve=False) is None
    again = await controls.answer(owner, running.id, approve=True)
    assert again is not None and again.plain() == NOT_WAITING
    assert (await turns.marks_among([running.id])).answers == {running.id: False}
    gone = await controls.answer(owner, lapsed.id, approve=True)
    assert gone is not None and gone.plain() == NOT_WAITING


@pytest.mark.parametrize("row", CONTROL_ROWS, ids=control_id)
async def test_the_core_reply_controls_follow_the_table(
    app: App, llm_fake: LLMFake, row: ControlRow
) -> None:
    tenant = "T2" if row.how == "other tenant" else "T1"
    key = ConversationKey("slack", tenant, "C1", f"{next(_threads)}.000")
    conversation = await app.store.ensure_conversation(key, OWNER, "a topic")
    await seed(app.store, conversation, archived=row.how == "archived")
    turn = {"stale id": STALE_ID, "garbage id": 2**64}.get(
        row.how, await reply_of(app.store, conversation.id)
    )
    user = {"owner": OWNER, "other": OTHER, "admin": ADMIN}[row.who]
    caller = Caller("slack", "T1", user, is_admin=row.who == "admin")
    controls = ReplyControls(app.engine, app.store)
    llm_fake.queue("workers", workers_stream(["A second answer."]))
    before = await answers(app.store, conversation.id)
    shown = ""
    try:
        if row.control == "stop":
            reply = await controls.stop(caller, turn)
            shown = reply.plain() if reply else ""
        elif row.control in ("approve", "deny"):
            reply = await controls.answer(caller, turn, approve=row.control == "approve")
            shown = reply.plain() if reply else ""
        else:
            await controls.regenerable(caller, turn)
            surface = MemorySurface(SYSTEM_CLOCK)
            outcome = await app.engine.regenerate(turn, user, surface)
            shown = outcome.error or ""
    except UserError as exc:
        shown = str(exc)
    assert shown == row.expect
    regenerated = await answers(app.store, conversation.id) - before
    assert regenerated == (1 if row.expect == REGENERATED else 0)
