"""Running turns have an owner and a lease, and keep what they have shown.

A turn is `streaming` while the process that runs it (its `owner`, one id per process) renews
`lease_until`; only a turn whose lease ran out is taken as interrupted, so a replica that starts
never cuts off another's live reply. `reply_refs` (JSON) lists the platform messages the reply
is shown in, saved with its text every few seconds, so a restart can finish them.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-02
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


COLUMNS = ("owner", "lease_until", "reply_refs")
INDEX = "ix_messages_streaming_owner"


def upgrade() -> None:
    # Plain ADD COLUMN, not a batch: on SQLite a batch recreates the table, which drops its
    # trigger (0005).
    op.add_column("messages", sa.Column("owner", sa.String(32), nullable=True))
    op.add_column("messages", sa.Column("lease_until", sa.DateTime(timezone=True), nullable=True))
    op.add_column("messages", sa.Column("reply_refs", sa.Text(), nullable=True))
    streaming = sa.text("status = 'streaming'")
    op.create_index(
        INDEX,
        "messages",
        ["owner", "lease_until"],
        sqlite_where=streaming,
        postgresql_where=streaming,
    )


def downgrade() -> None:
    op.drop_index(INDEX, table_name="messages")
    for column in reversed(COLUMNS):  # SQLite 3.35+ drops a column in place
        op.execute(f"ALTER TABLE messages DROP COLUMN {column}")
