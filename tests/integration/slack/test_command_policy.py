"""The conversation commands' policy table (tests/command_policy.py) through slack-bolt in
process: `@Parley archive|export|new|persona <name>` in the conversation's thread, or
`/archive <id>` (and /export, /new) from a channel elsewhere.

U0OWNER starts every conversation; U0OTHER is another member; U0ADMIN is a workspace admin
(users.info). A conversation "of another workspace" is U0OWNER's id in team T0002.
"""

from __future__ import annotations

import itertools

import pytest

from bot.commands.controls import STALE_BUTTON
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
    typed_garbage,
)
from tests.e2e.slack.helpers import wait_answer
from tests.fakes.llm_server import LLMFake, workers_stream
from tests.integration.slack.conftest import TEAM, RunningSlack

USERS = {"owner": "U0OWNER", "other": "U0OTHER", "admin": "U0ADMIN"}
CHANNEL = "C0POLICY"
_threads = itertools.count(1)


@pytest.mark.parametrize("case", cases(), ids=case_id)
async def test_slack_follows_the_table(slack_bot: RunningSlack, case: tuple[Row, str]) -> None:
    row, command = case
    fake, sender, store = slack_bot.fake, slack_bot.sender, slack_bot.app.store
    fake.add_user(USERS["owner"])
    fake.add_user(USERS["other"])
    fake.add_user(USERS["admin"], is_admin=True)
    team = "T0002" if row.how == "other tenant" else TEAM
    parent = fake.user_message(CHANNEL, USERS["owner"], f"topic {next(_threads)}", team=team)
    key = ConversationKey("slack", team, CHANNEL, parent.ts)
    conversation = await store.ensure_conversation(key, USERS["owner"], "a topic")
    await seed(store, conversation, archived=row.archived)
    assert slack_bot.app.personas is not None
    if not await slack_bot.app.personas.list(key):
        spec = PersonaSpec(PERSONA, "Talk like a pirate.")
        await slack_bot.app.personas.create(key, "admin", spec, is_admin=True)
    user = USERS[row.who]
    before = await snapshot(store, conversation.id)

    if row.how == "place":
        words = f"persona {PERSONA}" if command == "persona" else command
        await sender.event(sender.mention(CHANNEL, user, words, thread_ts=parent.ts))
        await fake.wait_for(lambda: [e for e in fake.ephemerals if e.user == user], 10)
        [note] = [e for e in fake.ephemerals if e.user == user]
        shown = note.text
    else:
        arg = {"stale id": str(STALE_ID), "garbage id": "12abc"}.get(row.how, str(conversation.id))
        before_urls = set(fake.response_urls)
        sent = await sender.command(f"/{command}", arg, user=user, channel="C0ELSEWHERE")
        assert sent.status == 200
        [rid] = set(fake.response_urls) - before_urls
        record = fake.response_urls[rid]
        await fake.wait_for(lambda: record.posts, 10)
        shown = str(record.posts[0]["text"])
    expected = row.expect[command]
    if row.how == "garbage id":
        expected = typed_garbage(command)
    assert agrees(shown, expected), shown
    assert changed_as_expected(row, command, before, await snapshot(store, conversation.id))


@pytest.mark.parametrize("row", CONTROL_ROWS, ids=control_id)
async def test_slack_reply_buttons_follow_the_table(
    slack_bot: RunningSlack, llm_fake: LLMFake, row: ControlRow
) -> None:
    fake, sender, store = slack_bot.fake, slack_bot.sender, slack_bot.app.store
    team = "T0002" if row.how == "other tenant" else TEAM
    parent = fake.user_message(CHANNEL, USERS["owner"], f"topic {next(_threads)}", team=team)
    key = ConversationKey("slack", team, CHANNEL, parent.ts)
    conversation = await store.ensure_conversation(key, USERS["owner"], "a topic")
    await seed(store, conversation, archived=row.how == "archived")
    turn = {"stale id": str(STALE_ID), "garbage id": "12abc"}.get(
        row.how, str(await reply_of(store, conversation.id))
    )
    user = USERS[row.who]
    fake.add_user(user, is_admin=row.who == "admin")
    llm_fake.queue("workers", workers_stream(["A second answer."]))
    before = await answers(store, conversation.id)
    label = {"type": "plain_text", "text": row.control.title()}
    button = {"type": "button", "action_id": f"parley_{row.control}", "value": turn, "text": label}
    where = {"channel": CHANNEL, "message_ts": parent.ts, "thread_ts": parent.ts}
    assert (await sender.click(button, user=user, **where)).status == 200
    if row.expect == REGENERATED:
        await wait_answer(fake, CHANNEL, parent.ts)
    else:
        await fake.wait_for(lambda: [e for e in fake.ephemerals if e.user == user], 10)
        [note] = [e for e in fake.ephemerals if e.user == user]
        expected = STALE_BUTTON if row.how == "garbage id" else row.expect  # refused as parsed
        assert agrees(note.text, expected), note.text
    regenerated = await answers(store, conversation.id) - before
    assert regenerated == (1 if row.expect == REGENERATED else 0)
