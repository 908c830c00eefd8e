"""One policy table for the conversation commands, run through the core handler and through
every surface (tests/integration/test_command_policy.py for the core and the console,
tests/integration/discord/ and tests/integration/slack/ for the platforms).

Each row seeds a fresh conversation started by the owner, then one person runs a command
naming it one way; every surface must show the same words (markup aside) and change the store
the same way: a command that is refused changes nothing.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from bot.commands.controls import (
    NOT_WAITING,
    NOT_YOURS_REGENERATE,
    NOT_YOURS_STOP,
    STALE_REPLY,
)
from bot.engine.chat import REFUSAL_ARCHIVED
from bot.engine.conversations import ARCHIVED, NOT_FOUND
from bot.engine.personas import NOT_YOUR_CONVERSATION
from bot.engine.running import STOP_FINISHED
from bot.store import Conversation, Store

Who = Literal["owner", "other", "admin"]
How = Literal["place", "id", "other tenant", "stale id", "garbage id"]
COMMANDS = ("archive", "export", "new", "persona")

DONE = {
    "archive": "Archived: I no longer answer in that conversation",
    "export": "Here is the conversation as Markdown",
    "new": "Fresh start: from the next message I ignore everything said there before",
    "persona": "This conversation now uses pirate",
}
NOT_YOURS = "This conversation belongs to someone else."
ARCHIVE_NOT_YOURS = "Only the person who started this conversation, or an admin, can archive it."
PERSONA = "pirate"
"""The persona every row applies with `persona` (created by the harness)."""
STALE_ID = 987_654_321
"""An id no conversation has."""


@dataclass(frozen=True, slots=True)
class Row:
    who: Who
    how: How
    expect: dict[str, str]
    """command -> what the reply starts with; a command missing here has no such form."""
    archived: bool = False

    @property
    def name(self) -> str:
        return f"{self.who} by {self.how}" + (" (archived)" if self.archived else "")


def _all(text: str, *, persona: bool = False) -> dict[str, str]:
    return {c: text for c in COMMANDS if persona or c != "persona"}


OTHER_AT_PLACE = {
    "archive": ARCHIVE_NOT_YOURS,
    "export": NOT_YOURS,
    "new": NOT_YOURS,
    "persona": NOT_YOUR_CONVERSATION,
}
ADMIN_AT_PLACE = {
    "archive": DONE["archive"],  # an admin archives a conversation they are in
    "export": NOT_YOURS,  # but reads nobody's
    "new": NOT_YOURS,
    "persona": DONE["persona"],
}
ROWS = (
    Row("owner", "place", dict(DONE)),
    Row("owner", "id", {c: DONE[c] for c in ("archive", "export", "new")}),
    Row("other", "place", OTHER_AT_PLACE),
    Row("other", "id", _all(NOT_FOUND)),
    Row("admin", "place", ADMIN_AT_PLACE),
    Row("admin", "id", _all(NOT_FOUND)),  # an admin cannot act on what they can only name
    Row("owner", "other tenant", _all(NOT_FOUND)),  # the id, from the owner's other tenant
    Row("owner", "place", _all(ARCHIVED, persona=True), archived=True),
    Row("owner", "id", _all(ARCHIVED), archived=True),
    Row("owner", "stale id", _all(NOT_FOUND)),
    Row("owner", "garbage id", _all(NOT_FOUND)),  # a surface may refuse it as it parses
)


def cases(*, platform_admins: bool = True) -> list[tuple[Row, str]]:
    """(row, command) pairs; without platform admins (the console) only the owner acts."""
    return [
        (row, command)
        for row in ROWS
        for command in COMMANDS
        if command in row.expect and (platform_admins or row.who == "owner")
    ]


def case_id(case: tuple[Row, str]) -> str:
    row, command = case
    return f"{command}: {row.name}"


def plain(text: str) -> str:
    """A reply's words without markup (bold, code, italics), whitespace collapsed."""
    return " ".join(re.sub(r"[*`_]", "", text).split())


def agrees(shown: str, expected: str) -> bool:
    return plain(shown).startswith(plain(expected))


@dataclass(frozen=True, slots=True)
class Snapshot:
    archived: bool
    context_start_id: int | None
    persona: str | None


async def snapshot(store: Store, conversation_id: int) -> Snapshot:
    found = await store.get_conversation_by_id(conversation_id)
    assert found is not None
    return Snapshot(found.archived, found.context_start_id, found.persona)


def changed_as_expected(row: Row, command: str, before: Snapshot, after: Snapshot) -> bool:
    """A refusal changes nothing; a command that is done changes what it says."""
    if row.expect[command] != DONE[command]:
        return before == after
    if command == "archive":
        return after.archived and not before.archived
    if command == "new":
        return after.context_start_id is not None and before.context_start_id is None
    if command == "persona":
        return after.persona == PERSONA
    return before == after  # an export changes nothing


async def seed(store: Store, conversation: Conversation, *, archived: bool) -> None:
    """Give a seeded conversation one turn (so a fresh start has something to drop)."""
    asked = await store.add_message(conversation.id, "user", "hello", user_id=conversation.user_id)
    await store.add_message(conversation.id, "assistant", "hi", parent_id=asked.id)
    if archived:
        await store.set_archived(conversation.id, True)


# -- Stop and Regenerate under a reply ---------------------------------------------------------

REGENERATED = ""
"""A new answer to the same question (the store holds a second answer)."""


@dataclass(frozen=True, slots=True)
class ControlRow:
    """Someone clicks `control` under a finished reply of the owner's, named one way."""

    who: Who
    how: Literal["its reply", "other tenant", "stale id", "garbage id", "archived"]
    control: Literal["stop", "regenerate", "approve", "deny"]
    expect: str

    @property
    def name(self) -> str:
        return f"{self.control}: {self.who} on {self.how}"


CONTROL_ROWS = (
    ControlRow("owner", "its reply", "stop", STOP_FINISHED),
    ControlRow("other", "its reply", "stop", NOT_YOURS_STOP),
    ControlRow("admin", "its reply", "stop", NOT_YOURS_STOP),  # a reply is its asker's
    ControlRow("owner", "other tenant", "stop", STALE_REPLY),
    ControlRow("owner", "stale id", "stop", STALE_REPLY),
    ControlRow("owner", "garbage id", "stop", STALE_REPLY),
    ControlRow("owner", "its reply", "regenerate", REGENERATED),
    ControlRow("other", "its reply", "regenerate", NOT_YOURS_REGENERATE),
    ControlRow("admin", "its reply", "regenerate", NOT_YOURS_REGENERATE),
    ControlRow("owner", "other tenant", "regenerate", STALE_REPLY),
    ControlRow("owner", "stale id", "regenerate", STALE_REPLY),
    ControlRow("owner", "garbage id", "regenerate", STALE_REPLY),
    ControlRow("owner", "archived", "regenerate", REFUSAL_ARCHIVED),
    # Approve / Deny on a reply that waits for nothing (a waiting one: test_mcp_tools.py and
    # the Discord, Slack and console e2e tests of tools).
    ControlRow("owner", "its reply", "approve", NOT_WAITING),
    ControlRow("other", "its reply", "deny", NOT_WAITING),
    ControlRow("owner", "other tenant", "approve", NOT_WAITING),
    ControlRow("owner", "stale id", "deny", NOT_WAITING),
    ControlRow("owner", "garbage id", "approve", NOT_WAITING),
)


def control_id(row: ControlRow) -> str:
    return row.name


async def answers(store: Store, conversation_id: int) -> int:
    """How many answers the conversation holds (a regeneration adds one)."""
    return sum(m.role == "assistant" for m in await store.history(conversation_id))


async def reply_of(store: Store, conversation_id: int) -> int:
    """The id of the seeded answer (what Stop and Regenerate name)."""
    [answer] = [m for m in await store.history(conversation_id) if m.role == "assistant"]
    return answer.id


def typed_garbage(command: str, typed: str = "12abc") -> str:
    """What a text surface (Slack, the console) says of an id typed as `12abc`: refused as it
    is parsed, by the core's spec, the same on both."""
    refusal = f"`conversation` must be a whole number (got {typed!r})."
    return f"{refusal}\nUsage: `/{command} [conversation]`"
