"""Platform message map and processed-event dedupe.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-21
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "platform_messages",
        sa.Column("platform", sa.String(32), nullable=False),
        sa.Column("tenant_id", sa.String(200), nullable=False),
        sa.Column("message_id", sa.String(160), nullable=False),
        sa.Column("channel_id", sa.String(160), nullable=False),
        sa.Column("conversation_id", sa.Integer(), nullable=False),
        sa.Column("turn_id", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["conversation_id"],
            ["conversations.id"],
            name="fk_platform_messages_conversation_id_conversations",
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["turn_id"],
            ["messages.id"],
            name="fk_platform_messages_turn_id_messages",
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("platform", "tenant_id", "message_id", name="pk_platform_messages"),
    )
    op.create_table(
        "processed_events",
        sa.Column("platform", sa.String(32), nullable=False),
        sa.Column("event_id", sa.String(200), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("platform", "event_id", name="pk_processed_events"),
    )
    op.create_index("ix_processed_events_created", "processed_events", ["created_at"])


def downgrade() -> None:
    op.drop_index("ix_processed_events_created", table_name="processed_events")
    op.drop_table("processed_events")
    op.drop_table("platform_messages")
