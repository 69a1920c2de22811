"""Provider health every process reads, written by the workers; per-key request buckets shared by the API
processes on PostgreSQL

Revision ID: 0011
Revises: 0010
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "provider_health",
        sa.Column("provider", sa.Text(), nullable=False),
        sa.Column("state", sa.Text(), nullable=False),
        sa.Column("failures", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("last_success_at", sa.BigInteger(), nullable=True),
        sa.Column("last_failure_at", sa.BigInteger(), nullable=True),
        sa.Column("open_until", sa.BigInteger(), nullable=False, server_default="0"),
        sa.Column("updated_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("provider"),
    )
    # A bucket is worth nothing after a crash (it refills within a second or two), so on PostgreSQL its
    # table skips the write-ahead log: a request's take then commits without waiting on a flush.
    unlogged = ["UNLOGGED"] if op.get_bind().dialect.name == "postgresql" else []
    op.create_table(
        "rate_buckets",
        sa.Column("key_id", sa.Text(), nullable=False),
        sa.Column("tokens", sa.Float(), nullable=False),
        sa.Column("stamp", sa.BigInteger(), nullable=False),
        sa.Column("taken", sa.SmallInteger(), nullable=False, server_default="0"),
        sa.PrimaryKeyConstraint("key_id"),
        prefixes=unlogged,
    )


def downgrade() -> None:
    op.drop_table("rate_buckets")
    op.drop_table("provider_health")
