"""An answer that used tools keeps its rounds (`tool_rounds`, JSON: each round's text, the calls
the model made and their results, capped, and the final answer), so later turns show the model
what its tools said.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-04
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("messages", sa.Column("tool_rounds", sa.Text(), nullable=True))


def downgrade() -> None:
    op.execute("ALTER TABLE messages DROP COLUMN tool_rounds")  # SQLite 3.35+ drops in place
