"""Stop, Approve and Deny pressed on another replica: the process that answers the click marks
the running turn (`stop_requested_at`; `approval`, 'waiting' while a tool call waits for its
asker, then 'approved' or 'denied'), and the process that runs it (the turn's `owner`) sees the
mark within a fraction of a second and acts on it, as if the click had come to it.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-04
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "messages", sa.Column("stop_requested_at", sa.DateTime(timezone=True), nullable=True)
    )
    op.add_column("messages", sa.Column("approval", sa.String(16), nullable=True))


def downgrade() -> None:
    op.execute("ALTER TABLE messages DROP COLUMN approval")  # SQLite 3.35+ drops in place
    op.execute("ALTER TABLE messages DROP COLUMN stop_requested_at")
