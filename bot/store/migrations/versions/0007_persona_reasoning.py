"""A persona may show its model's reasoning under each answer (`show_reasoning`: off | summary;
NULL follows the operator's SHOW_REASONING).

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-03
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("personas", sa.Column("show_reasoning", sa.String(16), nullable=True))


def downgrade() -> None:
    op.execute("ALTER TABLE personas DROP COLUMN show_reasoning")  # SQLite 3.35+ drops in place
