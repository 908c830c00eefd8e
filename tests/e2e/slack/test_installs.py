"""Slack OAuth installs, through the real `python -m bot` against the Slack fake: two workspaces
install the app (/slack/install -> Slack's authorize page -> /slack/oauth_redirect ->
oauth.v2.access), each is answered with its own token, and an uninstall removes one. An
Enterprise Grid organization installs it org-wide: its workspaces are answered with the
organization's token, even by work no request started (a restart's recovery), until access is
revoked or the organization uninstalls."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import aiohttp
from cryptography.fernet import Fernet

from tests.e2e.slack.conftest import ALICE, SECRET, SlackBot, StartBot
from tests.e2e.slack.helpers import finished, wait_answer
from tests.fakes.llm_server import workers_stream
from tests.fakes.slack import SlackFake, SlackSender
from tests.fakes.slack.oauth import AUTHORIZE_PATH, CLIENT_ID, CLIENT_SECRET

TEAMS = {"T0INSTALL1": "C0ONE", "T0INSTALL2": "C0TWO"}


def installs_env(fake: SlackFake) -> dict[str, str]:
    return {
        "SLACK_BOT_TOKEN": "",  # no single workspace's token: one per install
        "SLACK_CLIENT_ID": CLIENT_ID,
        "SLACK_CLIENT_SECRET": CLIENT_SECRET,
        "SLACK_AUTHORIZE_URL": fake.url + AUTHORIZE_PATH,
        "SLACK_NATIVE_STREAMING": "false",
    }


async def install(
    bot: SlackBot, team: str | None = None, *, org: str | None = None, replay: bool = False
) -> int:
    """An admin of `team` (or of the organization `org`, org-wide) adds the app: the install
    link, Slack's page, the redirect back (`replay`: the redirect's URL opened a second time;
    the status of that)."""
    base = f"http://127.0.0.1:{bot.port}"
    async with aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar()) as http:
        async with http.get(f"{base}/slack/install", allow_redirects=False) as started:
            assert started.status == 302
            location, cookie = started.headers["Location"], started.headers["Set-Cookie"]
        _, query = bot.fake.approve_install(location, team, org=org)
        state_cookie = cookie.split(";", 1)[0]  # the browser sends back what it was given
        callback = f"{base}/slack/oauth_redirect?{query}"
        async with http.get(callback, headers={"Cookie": state_cookie}) as done:
            status = done.status
        if replay:
            async with http.get(callback, headers={"Cookie": state_cookie}) as again:
                return again.status
        return status


def rows(bot: SlackBot, sql: str) -> list[tuple[Any, ...]]:
    db = Path(bot.log).parent / "parley.db"
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=10) as conn:
        return list(conn.execute(sql))


def installed_teams(bot: SlackBot) -> set[str]:
    return {row[0] for row in rows(bot, "SELECT team_id FROM slack_bots")}


async def test_two_workspaces_install_and_each_is_answered_with_its_own_token(
    start_bot: StartBot, slack_fake: SlackFake
) -> None:
    bot = await start_bot(
        **installs_env(slack_fake), SLACK_TOKEN_KEY=Fernet.generate_key().decode()
    )
    fake = bot.fake
    assert await install(bot, "T0INSTALL1") == 200
    assert await install(bot, "T0INSTALL2", replay=True) != 200  # a state works once
    assert [i["team"] for i in fake.installs] == ["T0INSTALL1", "T0INSTALL2"]
    assert installed_teams(bot) == set(TEAMS)
    stored = {row[0] for row in rows(bot, "SELECT bot_token FROM slack_bots")}
    assert all(t.startswith("sealed:v1:") for t in stored)  # SLACK_TOKEN_KEY: not in the clear
    assert not stored & {i["token"] for i in fake.installs}
    forged = f"http://127.0.0.1:{bot.port}/slack/oauth_redirect?code=code-T0EVIL-1&state=forged"
    async with aiohttp.ClientSession() as http, http.get(forged) as answer:
        assert answer.status != 200  # no state this app issued
    assert len(fake.installs) == 2 and installed_teams(bot) == set(TEAMS)
    senders = {}
    for team in TEAMS:
        senders[team] = SlackSender(bot.events_url, SECRET, fake, team)
        await senders[team].__aenter__()
    try:
        for team, channel in TEAMS.items():
            bot.llm.queue("workers", workers_stream([f"Hello, {team}."]))
            await senders[team].command("/chat", "hello", user=ALICE, channel=channel)
            await fake.wait_for(
                lambda c=channel: [
                    p for p in fake.calls_to("chat.postMessage") if p.args.get("channel") == c
                ]
            )
            quote = next(
                p for p in fake.calls_to("chat.postMessage") if p.args.get("channel") == channel
            )
            [reply] = [
                m for m in await wait_answer(fake, channel, quote.response["ts"]) if m.is_bot
            ]
            assert reply.text == f"Hello, {team}."
        for team, channel in TEAMS.items():
            calls = [c for c in fake.calls if c.args.get("channel") == channel]
            assert calls and {c.team for c in calls} == {team}  # each with its own token

        fake.uninstall("T0INSTALL2")  # removed in Slack: its token is revoked
        sent = await senders["T0INSTALL2"].event({"type": "app_uninstalled"})
        assert sent.status == 200
        await fake.wait_for(lambda: installed_teams(bot) == {"T0INSTALL1"})
        asked, posted = len(bot.llm.calls), len(fake.calls_to("chat.postMessage"))
        refused = await senders["T0INSTALL2"].command(
            "/chat", "still there?", user=ALICE, channel="C0TWO"
        )
        assert refused.status == 200  # acknowledged, and nothing done
        bot.llm.queue("workers", workers_stream(["Still here, one."]))
        await senders["T0INSTALL1"].command("/chat", "still there?", user=ALICE, channel="C0ONE")
        await fake.wait_for(lambda: len(bot.llm.calls) > asked)
        assert len(bot.llm.calls) == asked + 1  # the removed workspace is not answered
        late = fake.calls_to("chat.postMessage")[posted:]
        assert late and {c.args.get("channel") for c in late} == {"C0ONE"}
        assert "slack app removed from team=T0INSTALL2" in bot.output()
    finally:
        for sender in senders.values():
            await sender.__aexit__()


ORG = "E0GRID1"
GRID = {"T0GRIDA": "C0GRIDA", "T0GRIDB": "C0GRIDB"}
STORY = [f"word{i} " for i in range(80)]
NOTICE = "_(reply cut off by a restart)_"


def question_in(fake: SlackFake, channel: str) -> str:
    """The ts of the question /chat quoted in `channel` (its answer's thread)."""
    quoted = [
        c
        for c in fake.calls_to("chat.postMessage")
        if c.ok and c.args.get("channel") == channel and not c.args.get("thread_ts")
    ]
    return str(quoted[0].response["ts"]) if quoted else ""


def org_pairs(bot: SlackBot) -> set[tuple[str, str]]:
    return set(rows(bot, "SELECT workspace, org FROM workspace_orgs"))  # type: ignore[arg-type]


async def test_an_organization_wide_install_serves_its_workspaces_until_it_is_removed(
    start_bot: StartBot, slack_fake: SlackFake
) -> None:
    env = installs_env(slack_fake)
    bot = await start_bot(**env)
    fake = bot.fake
    assert await install(bot, org=ORG) == 200
    assert rows(bot, "SELECT enterprise_id, team_id, is_enterprise_install FROM slack_bots") == [
        (ORG, None, 1)
    ]
    [token] = [t for t, owner in fake.tokens.items() if owner == ORG]

    async with SlackSender(bot.events_url, SECRET, fake, "", org=ORG) as org_wide:
        granted = await org_wide.event({"type": "team_access_granted", "team_ids": list(GRID)})
        assert granted.status == 200
        await fake.wait_for(lambda: org_pairs(bot) == {(t, ORG) for t in GRID})

    # A long answer in one of its workspaces, cut off by kill -9: the next start finds the
    # workspace's token through its organization, and finishes the reply with it.
    async with SlackSender(bot.events_url, SECRET, fake, "T0GRIDA", org=ORG) as grid_a:
        bot.llm.queue("workers", workers_stream(STORY, delay=0.1))
        await grid_a.command("/chat", "Tell me a long story", user=ALICE, channel="C0GRIDA")

        def streaming() -> bool:
            found = rows(bot, "SELECT content, reply_refs FROM messages WHERE role = 'assistant'")
            return bool(found and found[-1][0] and found[-1][1])

        await fake.wait_for(streaming, 20)
    await bot.kill()
    thread = question_in(fake, "C0GRIDA")
    [reply] = [m for m in fake.bot_replies("C0GRIDA", thread) if m.text.startswith("word0")]
    assert not finished(reply)
    before = len(fake.calls)
    again = await start_bot(**env)
    await fake.wait_for(lambda: fake.messages[("C0GRIDA", reply.ts)].text.endswith(NOTICE), 20)
    edits = [c for c in fake.calls[before:] if c.args.get("channel") == "C0GRIDA"]
    assert edits and {c.team for c in edits} == {ORG}  # the organization's token

    async with (
        SlackSender(again.events_url, SECRET, fake, "", org=ORG) as org_wide,
        SlackSender(again.events_url, SECRET, fake, "T0GRIDB", org=ORG) as grid_b,
    ):
        again.llm.queue("workers", workers_stream(["Hello, B."]))
        await grid_b.command("/chat", "hello", user=ALICE, channel="C0GRIDB")
        await fake.wait_for(lambda: question_in(fake, "C0GRIDB"))
        [answer] = await wait_answer(fake, "C0GRIDB", question_in(fake, "C0GRIDB"))
        assert answer.text == "Hello, B."
        revoked = await org_wide.event({"type": "team_access_revoked", "team_ids": ["T0GRIDB"]})
        assert revoked.status == 200
        await fake.wait_for(lambda: org_pairs(again) == {("T0GRIDA", ORG)})

        fake.uninstall(ORG)  # the organization removes the app: its token is revoked
        assert token not in fake.tokens
        gone = await org_wide.event({"type": "app_uninstalled"})
        assert gone.status == 200
        await fake.wait_for(lambda: not rows(again, "SELECT * FROM slack_bots"))
        assert org_pairs(again) == set()
        asked = len(again.llm.calls)
        refused = await grid_b.command("/chat", "still there?", user=ALICE, channel="C0GRIDB")
        assert refused.status == 200  # acknowledged, and nothing done
    assert len(again.llm.calls) == asked
    assert f"slack app removed from org={ORG} teams=T0GRIDA" in again.output()
