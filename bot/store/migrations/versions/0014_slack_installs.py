"""Slack OAuth installs: slack_sdk's installation and state tables (`slack_installations`,
`slack_bots`, `slack_oauth_states`), as slack_sdk's own table builders make them, so that its
AsyncSQLAlchemyInstallationStore and AsyncSQLAlchemyOAuthStateStore read them as they expect.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-04
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLES = ("slack_installations", "slack_bots", "slack_oauth_states")


def _s(name: str, length: int = 32, *, null: bool = True) -> sa.Column[Any]:
    return sa.Column(name, sa.String(length), nullable=null)


def _token(prefix: str) -> list[sa.Column[Any]]:
    return [
        _s(f"{prefix}_token", 200), _s(f"{prefix}_scopes", 1000),
        _s(f"{prefix}_refresh_token", 200), sa.Column(f"{prefix}_token_expires_at", sa.DateTime()),
    ]  # fmt: skip


def _ids() -> list[sa.Column[Any]]:
    return [
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        _s("client_id", null=False), _s("app_id", null=False),
        _s("enterprise_id"), _s("enterprise_name", 200),
    ]  # fmt: skip


def _since() -> list[sa.Column[Any]]:
    return [
        sa.Column("is_enterprise_install", sa.Boolean(), nullable=False),
        sa.Column("installed_at", sa.DateTime(), nullable=False),
    ]


def _tables() -> sa.MetaData:
    """slack_sdk's tables as its builders (SQLAlchemyInstallationStore.build_*_table,
    SQLAlchemyOAuthStateStore.build_oauth_states_table) made them in slack_sdk 3.x, written out
    so that the core does not import a platform and a migration does not change when slack_sdk
    does (tests/unit/store/test_slack_tables.py compares them with slack_sdk's builders)."""
    metadata = sa.MetaData()
    installs = sa.Table(
        TABLES[0], metadata, *_ids(), _s("enterprise_url", 200),
        _s("team_id"), _s("team_name", 200),
        _s("bot_token", 200), _s("bot_id"), _s("bot_user_id"), *_token("bot")[1:],
        _s("user_id", null=False), *_token("user"),
        *(_s(f"incoming_webhook_{n}", 200) for n in ("url", "channel", "channel_id")),
        _s("incoming_webhook_configuration_url", 200),
        _since()[0], _s("token_type"), _since()[1],
    )  # fmt: skip
    c = installs.c
    sa.Index(f"{TABLES[0]}_idx", c.client_id, c.enterprise_id, c.team_id, c.user_id,
             c.installed_at)  # fmt: skip
    bots = sa.Table(
        TABLES[1], metadata, *_ids(), _s("team_id"), _s("team_name", 200),
        _s("bot_token", 200), _s("bot_id"), _s("bot_user_id"), *_token("bot")[1:],
        *_since(),
    )  # fmt: skip
    b = bots.c
    sa.Index(f"{TABLES[1]}_idx", b.client_id, b.enterprise_id, b.team_id, b.installed_at)
    sa.Table(
        TABLES[2], metadata, sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        _s("state", 200, null=False), sa.Column("expire_at", sa.DateTime(), nullable=False),
    )  # fmt: skip
    return metadata


def upgrade() -> None:
    _tables().create_all(op.get_bind())


def downgrade() -> None:
    _tables().drop_all(op.get_bind())
