"""Indexes for fair claims across owners and the per-key render limit; object keys recorded before writes

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index(
        "ix_jobs_queue",
        "jobs",
        ["provider", "owner_id", "next_run_at", "id"],
        unique=False,
        sqlite_where=sa.text("status = 'queued'"),
        postgresql_where=sa.text("status = 'queued'"),
    )
    op.create_index(
        "ix_jobs_renders",
        "jobs",
        ["owner_id"],
        unique=False,
        sqlite_where=sa.text("provider = 'vidgate' AND lease_until IS NOT NULL"),
        postgresql_where=sa.text("provider = 'vidgate' AND lease_until IS NOT NULL"),
    )
    op.create_table(
        "pending_objects",
        sa.Column("key", sa.Text(), nullable=False),
        sa.Column("job_id", sa.Text(), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("key"),
    )


def downgrade() -> None:
    op.drop_table("pending_objects")
    op.drop_index("ix_jobs_renders", table_name="jobs")
    op.drop_index("ix_jobs_queue", table_name="jobs")
