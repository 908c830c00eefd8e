"""A user turn keeps what its files said (`attachments`, JSON: each file's name, its text as the
model read it, cut to fit, and how long it was), so later turns need neither the platform's link
(Discord's expire, Slack's need the token) nor the file.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-04
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("messages", sa.Column("attachments", sa.Text(), nullable=True))


def downgrade() -> None:
    op.execute("ALTER TABLE messages DROP COLUMN attachments")  # SQLite 3.35+ drops in place
