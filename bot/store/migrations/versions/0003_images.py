"""Image quotes and jobs; circuit-breaker state shared by replicas.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-24
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_JOB_STATUSES = (
    "quoted",
    "generating",
    "succeeded",
    "failed",
    "refused",
    "unknown",
    "cancelled",
    "expired",
    "superseded",
)
_BREAKER_STATES = ("CLOSED", "OPEN", "HALF_OPEN")


def _in(values: tuple[str, ...]) -> str:
    return ", ".join(f"'{v}'" for v in values)


def upgrade() -> None:
    when = sa.DateTime(timezone=True)
    op.create_table(
        "image_jobs",
        sa.Column("id", sa.String(32), nullable=False),
        sa.Column("tenant_id", sa.String(200), nullable=False),
        sa.Column("platform", sa.String(32), nullable=False),
        sa.Column("channel_id", sa.String(160), nullable=False),
        sa.Column("thread_id", sa.String(160), nullable=False, server_default=""),
        sa.Column("user_id", sa.String(160), nullable=False),
        sa.Column("prompt", sa.Text(), nullable=False),
        sa.Column("options", sa.Text(), nullable=False, server_default="{}"),
        sa.Column("tier", sa.String(16), nullable=False),
        sa.Column("size", sa.String(16), nullable=False),
        sa.Column("entry", sa.String(100), nullable=False),
        sa.Column("provider", sa.String(64), nullable=False),
        sa.Column("model", sa.String(200), nullable=False),
        sa.Column("estimate", sa.BigInteger(), nullable=False),
        sa.Column("alternatives", sa.Text(), nullable=False, server_default="[]"),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("created_at", when, nullable=False),
        sa.Column("expires_at", when, nullable=False),
        sa.Column("claimed_at", when, nullable=True),
        sa.Column("lease_until", when, nullable=True),
        sa.Column("confirmed_entry", sa.String(100), nullable=True),
        sa.Column("confirmed_estimate", sa.BigInteger(), nullable=True),
        sa.Column("used_provider", sa.String(64), nullable=True),
        sa.Column("used_model", sa.String(200), nullable=True),
        sa.Column("fallback_from", sa.String(64), nullable=True),
        sa.Column("cost", sa.BigInteger(), nullable=True),
        sa.Column("duration_ms", sa.Integer(), nullable=True),
        sa.Column("detail", sa.Text(), nullable=True),
        sa.Column("superseded_by", sa.String(32), nullable=True),
        sa.Column("finished_at", when, nullable=True),
        sa.CheckConstraint(f"status IN ({_in(_JOB_STATUSES)})", name="ck_image_jobs_status"),
        sa.PrimaryKeyConstraint("id", name="pk_image_jobs"),
    )
    op.create_index(
        "ix_image_jobs_tenant_user_claimed", "image_jobs", ["tenant_id", "user_id", "claimed_at"]
    )
    op.create_index("ix_image_jobs_tenant_claimed", "image_jobs", ["tenant_id", "claimed_at"])
    op.create_index("ix_image_jobs_status", "image_jobs", ["status"])
    op.create_table(
        "breakers",
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("failures", sa.Text(), nullable=False, server_default="[]"),
        sa.Column("open_until", when, nullable=True),
        sa.Column("probe_until", when, nullable=True),
        sa.Column("probe_successes", sa.Integer(), nullable=False, server_default=sa.text("0")),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("updated_at", when, nullable=False),
        sa.CheckConstraint(f"state IN ({_in(_BREAKER_STATES)})", name="ck_breakers_state"),
        sa.PrimaryKeyConstraint("name", name="pk_breakers"),
    )


def downgrade() -> None:
    op.drop_table("breakers")
    op.drop_index("ix_image_jobs_status", table_name="image_jobs")
    op.drop_index("ix_image_jobs_tenant_claimed", table_name="image_jobs")
    op.drop_index("ix_image_jobs_tenant_user_claimed", table_name="image_jobs")
    op.drop_table("image_jobs")
