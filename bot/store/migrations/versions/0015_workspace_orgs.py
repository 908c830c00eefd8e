"""The organization a workspace belongs to, for apps installed across a whole organization
(`workspace_orgs`; Slack Enterprise Grid): the installation is the organization's, so work no
request started (a recovery, a notice) finds a workspace's token through its organization.

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-07
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0015"
down_revision: str | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "workspace_orgs",
        sa.Column("platform", sa.String(32), primary_key=True),
        sa.Column("workspace", sa.String(160), primary_key=True),
        sa.Column("org", sa.String(160), nullable=False),
        sa.Column("seen_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_workspace_orgs_org", "workspace_orgs", ["platform", "org"])


def downgrade() -> None:
    op.drop_table("workspace_orgs")
