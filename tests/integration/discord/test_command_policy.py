"""The conversation commands' policy table (tests/command_policy.py) through the real discord.py
client: slash commands run in the conversation's thread, or elsewhere with its id.

alice starts every conversation; bob is another member; carol holds the admin role
(DISCORD_ADMIN_ROLE=admin). A conversation "of another server" is alice's, in a second guild.
"""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio

from bot.domain import ConversationKey
from bot.engine.personas import PersonaSpec
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
)
from tests.fakes.discord import FakeDiscord
from tests.fakes.discord.payloads import EPHEMERAL, LOADING
from tests.fakes.llm_server import LLMFake, workers_stream
from tests.integration.discord.conftest import Running, start_bot

USERS = {"owner": "alice", "other": "bob", "admin": "carol"}
_names = itertools.count(1)


@pytest_asyncio.fixture
async def policy_bot(discord_fake: FakeDiscord, llm_fake: LLMFake) -> AsyncIterator[Running]:
    discord_fake.add_guild("Elsewhere")
    running = await start_bot(discord_fake, llm_fake, discord_admin_role="admin")
    try:
        yield running
    finally:
        await running.close()


async def private_answer(fake: FakeDiscord, inter: Any) -> str:
    def done() -> dict[str, Any] | None:
        found = fake.messages.get(inter.original_id or "")
        return None if found is None or found["flags"] & LOADING else found

    message: dict[str, Any] = await fake.wait_until(done, 15, what="a private answer")
    assert message["flags"] & EPHEMERAL
    return str(message.get("content") or "")


@pytest.mark.parametrize("case", cases(), ids=case_id)
async def test_discord_follows_the_table(
    discord_fake: FakeDiscord, policy_bot: Running, case: tuple[Row, str]
) -> None:
    row, command = case
    fake, store = discord_fake, policy_bot.app.store
    guild = fake.other_guilds[0] if row.how == "other tenant" else fake.guild
    parent = guild.channels[0]
    thread = await fake.create_thread(
        str(10**17 + next(_names)), parent, {"name": f"topic {next(_names)}"}
    )
    key = ConversationKey("discord", guild.id, parent, thread["id"])
    conversation = await store.ensure_conversation(key, fake.users["alice"]["id"], "a topic")
    await seed(store, conversation, archived=row.archived)
    assert policy_bot.app.personas is not None
    spec = PersonaSpec(PERSONA, "Talk like a pirate.")
    if not await policy_bot.app.personas.list(key):
        await policy_bot.app.personas.create(key, "admin", spec, is_admin=True)

    options: dict[str, Any] = {}
    channel = thread["id"]
    if row.how != "place":
        channel = fake.guild.channels[1]  # elsewhere in the first server
        named = {"stale id": STALE_ID, "garbage id": 0}.get(row.how, conversation.id)
        options = {"conversation": named}
    before = await snapshot(store, conversation.id)
    if command == "persona":
        inter = await fake.slash(
            "persona", {"name": PERSONA}, sub="use", user=USERS[row.who], channel=channel
        )
    else:
        inter = await fake.slash(command, options, user=USERS[row.who], channel=channel)
    shown = await private_answer(fake, inter)
    assert agrees(shown, row.expect[command]), shown
    assert changed_as_expected(row, command, before, await snapshot(store, conversation.id))


@pytest.mark.parametrize("row", CONTROL_ROWS, ids=control_id)
async def test_discord_reply_buttons_follow_the_table(
    discord_fake: FakeDiscord, llm_fake: LLMFake, policy_bot: Running, row: ControlRow
) -> None:
    fake, store = discord_fake, policy_bot.app.store
    guild = fake.other_guilds[0] if row.how == "other tenant" else fake.guild
    parent = guild.channels[0]
    thread = await fake.create_thread(
        str(10**17 + next(_names)), parent, {"name": f"topic {next(_names)}"}
    )
    key = ConversationKey("discord", guild.id, parent, thread["id"])
    conversation = await store.ensure_conversation(key, fake.users["alice"]["id"], "a topic")
    await seed(store, conversation, archived=row.how == "archived")
    turn = {"stale id": str(STALE_ID), "garbage id": "9" * 19}.get(
        row.how, str(await reply_of(store, conversation.id))
    )
    shown_in = fake.guild.channels[1] if row.how == "other tenant" else thread["id"]
    message = fake.store_message(shown_in, fake.bot_user, {"content": "an answer"})
    fake.set_buttons(message["id"], f"parley:{row.control}:{turn}")
    llm_fake.queue("workers", workers_stream(["A second answer."]))
    before = await answers(store, conversation.id)
    click = await fake.click(message["id"], f"parley:{row.control}:{turn}", user=USERS[row.who])
    if row.expect == REGENERATED:
        await fake.wait_until(lambda: fake.finished(thread["id"]), 15, what="the new answer")
        await fake.wait_until(  # "Regenerating…" goes once the answer is in
            lambda: click.original_id and click.original_id not in fake.messages, 15
        )
    else:
        shown = await private_answer(fake, click)
        assert agrees(shown, row.expect), shown
    regenerated = await answers(store, conversation.id) - before
    assert regenerated == (1 if row.expect == REGENERATED else 0)
