"""Where work no request started finds a workspace's bot token with OAuth installs: the
workspace's own installation, else (Enterprise Grid) its organization's org-wide one, through
slack_sdk's real installation store on the bot's own SQLite file; and the tokens sealed at rest
with SLACK_TOKEN_KEY."""

from __future__ import annotations

import logging
import sqlite3
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio
from cryptography.fernet import Fernet
from slack_sdk.oauth.installation_store import Installation
from slack_sdk.oauth.installation_store.sqlalchemy import AsyncSQLAlchemyInstallationStore

from adapters.slack.installs import installed_token
from adapters.slack.sealed import PREFIX, SealedInstallationStore
from bot.config import ConfigurationError, load_settings
from bot.store import Store
from bot.store.engine import create_engine
from bot.store.orgs_repo import WorkspaceOrgs

CLIENT_ID = "1111.2222"


@pytest_asyncio.fixture
async def stores(tmp_path: Path) -> AsyncIterator[tuple[AsyncSQLAlchemyInstallationStore, Store]]:
    url = f"sqlite+aiosqlite:///{tmp_path / 'parley.db'}"
    async with await Store.open(url) as store:  # migrated: the slack_* tables too
        engine = create_engine(url)
        try:
            yield AsyncSQLAlchemyInstallationStore(CLIENT_ID, engine=engine), store
        finally:
            await engine.dispose()


def install(token: str, *, team: str | None, org: str | None = None) -> Installation:
    return Installation(
        app_id="A0PARLEY",
        enterprise_id=org,
        team_id=team,
        bot_token=token,
        bot_id="B1",
        bot_user_id="UBOT",
        bot_scopes="chat:write,commands",
        user_id="U0INSTALLER",
        is_enterprise_install=team is None,
    )


async def test_a_workspace_finds_its_own_install_else_its_organizations(
    stores: tuple[AsyncSQLAlchemyInstallationStore, Store],
) -> None:
    installs, store = stores
    await installs.async_save(install("xoxb-plain", team="T1"))
    await installs.async_save(install("xoxb-org", team=None, org="E1"))
    await installs.async_save(install("xoxb-own", team="T9", org="E1"))  # one workspace of E1
    orgs = WorkspaceOrgs(store, "slack")
    await orgs.remember("E1", ["TA", "T9"])
    token = installed_token(installs, orgs)

    assert await token("T1") == "xoxb-plain"
    assert await token("TA") == "xoxb-org"  # granted to the organization's install
    assert await token("T9") == "xoxb-own"  # its own install comes first
    assert await token("TX") is None  # no install, no organization known

    assert await orgs.forget("E1", ["TA"]) == ["TA"]  # access revoked
    assert await token("TA") is None
    await installs.async_delete_all(enterprise_id="E1", team_id=None)  # the org uninstalls
    assert await token("T9") == "xoxb-own"  # a workspace's own install stays
    assert await token("T1") == "xoxb-plain"


@pytest.mark.parametrize("org", [None, "E2"])
async def test_a_workspace_unknown_to_the_store_has_no_token(
    stores: tuple[AsyncSQLAlchemyInstallationStore, Store], org: str | None
) -> None:
    installs, store = stores
    if org:
        await installs.async_save(install("xoxb-org2", team=None, org=org))
    assert await installed_token(installs, WorkspaceOrgs(store, "slack"))("T5") is None


def stored_tokens(tmp_path: Path) -> set[str]:
    with sqlite3.connect(tmp_path / "parley.db") as conn:
        bots = conn.execute("SELECT bot_token FROM slack_bots").fetchall()
        installs = conn.execute("SELECT bot_token FROM slack_installations").fetchall()
    return {row[0] for row in bots + installs}


async def test_sealed_tokens_are_not_in_the_database_and_read_back_as_they_were(
    tmp_path: Path,
    stores: tuple[AsyncSQLAlchemyInstallationStore, Store],
    caplog: pytest.LogCaptureFixture,
) -> None:
    plain, store = stores
    await plain.async_save(install("xoxb-old-plain", team="T0"))  # before the key was set
    key = Fernet.generate_key().decode()
    sealed = SealedInstallationStore(CLIENT_ID, engine=plain.engine, key=key)
    await sealed.async_save(install("xoxb-secret-1", team="T1"))
    await sealed.async_save(install("xoxb-secret-org", team=None, org="E1"))

    kept = stored_tokens(tmp_path)
    assert "xoxb-old-plain" in kept
    assert not any("secret" in token for token in kept)
    assert {t for t in kept if t != "xoxb-old-plain"} and all(
        t.startswith(PREFIX) for t in kept if t != "xoxb-old-plain"
    )
    found = await sealed.async_find_bot(enterprise_id=None, team_id="T1")
    assert found is not None and found.bot_token == "xoxb-secret-1"
    whole = await sealed.async_find_installation(enterprise_id=None, team_id="T1")
    assert whole is not None and whole.bot_token == "xoxb-secret-1"
    org = await sealed.async_find_bot(enterprise_id="E1", team_id=None, is_enterprise_install=True)
    assert org is not None and org.bot_token == "xoxb-secret-org"
    old = await sealed.async_find_bot(enterprise_id=None, team_id="T0")
    assert old is not None and old.bot_token == "xoxb-old-plain"  # still served
    orgs = WorkspaceOrgs(store, "slack")
    await orgs.remember("E1", ["TA"])
    assert await installed_token(sealed, orgs)("TA") == "xoxb-secret-org"

    other = SealedInstallationStore(
        CLIENT_ID, engine=plain.engine, key=Fernet.generate_key().decode()
    )
    with caplog.at_level(logging.ERROR, logger="parley.slack"):
        assert await other.async_find_bot(enterprise_id=None, team_id="T1") is None
    [line] = [r.getMessage() for r in caplog.records if r.name == "parley.slack"]
    assert "cannot be opened with SLACK_TOKEN_KEY" in line and PREFIX not in line


async def test_a_rotated_key_reads_the_old_seals_and_writes_new_ones(
    stores: tuple[AsyncSQLAlchemyInstallationStore, Store],
) -> None:
    plain, _ = stores
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    before = SealedInstallationStore(CLIENT_ID, engine=plain.engine, key=old)
    await before.async_save(install("xoxb-sealed-old", team="T1"))
    rotated = SealedInstallationStore(CLIENT_ID, engine=plain.engine, key=f"{new}, {old}")
    found = await rotated.async_find_bot(enterprise_id=None, team_id="T1")
    assert found is not None and found.bot_token == "xoxb-sealed-old"
    await rotated.async_save(install("xoxb-sealed-new", team="T2"))
    only_new = SealedInstallationStore(CLIENT_ID, engine=plain.engine, key=new)
    again = await only_new.async_find_bot(enterprise_id=None, team_id="T2")
    assert again is not None and again.bot_token == "xoxb-sealed-new"  # sealed with the first
    assert await only_new.async_find_bot(enterprise_id=None, team_id="T1") is None


@pytest.mark.parametrize("key", ["not-a-key", "c2hvcnQ=", "x" * 44, "{good},not-a-key"])
def test_a_token_key_that_is_not_a_fernet_key_is_refused_at_start(
    key: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    good = Fernet.generate_key().decode()
    monkeypatch.setenv("SLACK_TOKEN_KEY", key.format(good=good))
    with pytest.raises(ConfigurationError, match=r"SLACK_TOKEN_KEY: .*Fernet keys") as refused:
        load_settings()
    assert "not-a-key" not in str(refused.value) and good not in str(refused.value)
    monkeypatch.setenv("SLACK_TOKEN_KEY", f" {good} , {Fernet.generate_key().decode()} ")
    keys = load_settings().slack_token_key
    assert keys is not None and keys.get_secret_value().startswith(f"{good},")


def test_a_single_workspace_bot_never_loads_the_install_machinery() -> None:
    """slack_sdk's OAuth stores and cryptography (~7 MB resident) only come with installs."""
    program = (
        "import sys\n"
        "import adapters.slack.adapter\n"
        "print('adapters.slack.installs' in sys.modules, 'cryptography' in sys.modules)\n"
    )
    found = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True)
    assert found.stdout.split() == ["False", "False"], found.stderr
