"""Chat turns admitted under CHAT_MESSAGES_PER_MINUTE (`chat_admissions`): the count of a user's
turns in the last minute and the admission of the next one happen in one transaction, locked
per user, so messages arriving at once (in several conversations, on several replicas) are
admitted up to the limit and no further.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-04
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "chat_admissions",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("tenant_id", sa.String(200), nullable=False),
        sa.Column("user_id", sa.String(160), nullable=False),
        sa.Column("admitted_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index(
        "ix_chat_admissions_user", "chat_admissions", ["tenant_id", "user_id", "admitted_at"]
    )


def downgrade() -> None:
    op.drop_table("chat_admissions")
