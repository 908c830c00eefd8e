"""Where work no request started finds a workspace's bot token with OAuth installs: the
workspace's own installation, else (Enterprise Grid) its organization's org-wide one, through
slack_sdk's real installation store on the bot's own SQLite file."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio
from slack_sdk.oauth.installation_store import Installation
from slack_sdk.oauth.installation_store.sqlalchemy import AsyncSQLAlchemyInstallationStore

from adapters.slack.installs import installed_token
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
