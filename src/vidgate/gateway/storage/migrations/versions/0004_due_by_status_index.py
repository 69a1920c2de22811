"""An index for the worker's claim of due jobs by status (polls before a backlog of submits)

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index(
        "ix_jobs_status_due",
        "jobs",
        ["status", "next_run_at"],
        unique=False,
        sqlite_where=sa.text("next_run_at IS NOT NULL"),
        postgresql_where=sa.text("next_run_at IS NOT NULL"),
    )


def downgrade() -> None:
    op.drop_index("ix_jobs_status_due", table_name="jobs")
