"""Slack OAuth installs: slack_sdk's installation and state tables (`slack_installations`,
`slack_bots`, `slack_oauth_states`), built by slack_sdk's own table builders so that its
AsyncSQLAlchemyInstallationStore and AsyncSQLAlchemyOAuthStateStore read them as they expect.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-04
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLES = ("slack_installations", "slack_bots", "slack_oauth_states")


def _tables() -> sa.MetaData:
    from slack_sdk.oauth.installation_store.sqlalchemy import SQLAlchemyInstallationStore
    from slack_sdk.oauth.state_store.sqlalchemy import SQLAlchemyOAuthStateStore

    metadata = sa.MetaData()
    SQLAlchemyInstallationStore.build_installations_table(metadata, TABLES[0])
    SQLAlchemyInstallationStore.build_bots_table(metadata, TABLES[1])
    SQLAlchemyOAuthStateStore.build_oauth_states_table(metadata, TABLES[2])
    return metadata


def upgrade() -> None:
    _tables().create_all(op.get_bind())


def downgrade() -> None:
    _tables().drop_all(op.get_bind())
