"""Personas, per-channel defaults, the `/new` context marker, an index for per-user limits.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-28
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    when = sa.DateTime(timezone=True)
    with op.batch_alter_table("conversations") as batch:
        batch.add_column(sa.Column("context_start_id", sa.Integer(), nullable=True))
    op.create_table(
        "personas",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("tenant_id", sa.String(200), nullable=False),
        sa.Column("name", sa.String(32), nullable=False),
        sa.Column("system_prompt", sa.Text(), nullable=False),
        sa.Column("model", sa.String(200), nullable=True),
        sa.Column("temperature", sa.Float(), nullable=True),
        sa.Column("top_p", sa.Float(), nullable=True),
        sa.Column("max_tokens", sa.Integer(), nullable=True),
        sa.Column("tools", sa.Text(), server_default="[]", nullable=False),
        sa.Column("created_by", sa.String(160), nullable=False),
        sa.Column("created_at", when, nullable=False),
        sa.Column("updated_at", when, nullable=False),
        sa.ForeignKeyConstraint(
            ["tenant_id"], ["tenants.id"], name="fk_personas_tenant_id_tenants", ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_personas"),
        sa.UniqueConstraint("tenant_id", "name", name="uq_personas_tenant_id_name"),
    )
    op.create_table(
        "channel_settings",
        sa.Column("tenant_id", sa.String(200), nullable=False),
        sa.Column("channel_id", sa.String(160), nullable=False),
        sa.Column("persona", sa.String(32), nullable=True),
        sa.Column("updated_at", when, nullable=False),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name="fk_channel_settings_tenant_id_tenants",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("tenant_id", "channel_id", name="pk_channel_settings"),
    )
    op.create_index("ix_messages_user_created", "messages", ["user_id", "created_at"])


def downgrade() -> None:
    op.drop_index("ix_messages_user_created", table_name="messages")
    op.drop_table("channel_settings")
    op.drop_table("personas")
    with op.batch_alter_table("conversations") as batch:
        batch.drop_column("context_start_id")
