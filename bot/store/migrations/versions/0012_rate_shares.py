"""Rate budgets shared by the processes of one bot (`rate_shares`): each process keeps a row
under the budget's name, renewed every second with a lease, and paces at the budget's total
divided by the live rows (Discord's 50 requests a second are the bot's, not a process's).

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-04
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "rate_shares",
        sa.Column("budget", sa.String(64), primary_key=True),
        sa.Column("member", sa.String(64), primary_key=True),
        sa.Column("lease_until", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("rate_shares")
