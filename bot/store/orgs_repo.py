"""Workspaces of organization-wide installs: which organization each workspace belongs to.

Part of the Store package ("the one place that runs SQL"). An app installed across a whole
organization (Slack Enterprise Grid) has one installation, the organization's, for all its
workspaces; a request says both, but work no request started (a recovery, a notice) knows only
the workspace, so the adapter remembers the pair when a request or an access event shows it.
"""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import delete, select, update

from bot.store.repo import Store
from bot.store.tables import workspace_orgs


class WorkspaceOrgs:
    def __init__(self, store: Store, platform: str) -> None:
        self._store = store
        self._platform = platform

    async def remember(self, org: str, workspaces: Iterable[str]) -> None:
        """These workspaces belong to `org` (one that moved to another organization moves)."""
        w = workspace_orgs.c
        async with self._store._transaction(write=True) as conn:
            now = self._store._clock.wall()
            for workspace in workspaces:
                mine = (w.platform == self._platform, w.workspace == workspace)
                await conn.execute(update(workspace_orgs).where(*mine).values(org=org, seen_at=now))
                row = {"platform": self._platform, "workspace": workspace, "org": org}
                await conn.execute(
                    self._store._insert_ignoring_conflicts(workspace_orgs, **row, seen_at=now)
                )

    async def org_of(self, workspace: str) -> str | None:
        w = workspace_orgs.c
        query = select(w.org).where(w.platform == self._platform, w.workspace == workspace)
        async with self._store._transaction(write=False) as conn:
            return (await conn.execute(query)).scalar_one_or_none()

    async def forget(self, org: str, workspaces: Iterable[str] | None = None) -> list[str]:
        """The organization's app lost these workspaces (None: all of them, an uninstall);
        the workspaces forgotten."""
        w = workspace_orgs.c
        where = [w.platform == self._platform, w.org == org]
        if workspaces is not None:
            where.append(w.workspace.in_(list(workspaces)))
        async with self._store._transaction(write=True) as conn:
            gone = await conn.execute(delete(workspace_orgs).where(*where).returning(w.workspace))
            return sorted(gone.scalars())
