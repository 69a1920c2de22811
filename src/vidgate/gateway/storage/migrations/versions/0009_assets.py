"""Every stored output by its asset id, for creates that name one as an input reference

The outputs of completed jobs are copied in from their ``outputs`` column, so an asset made before
this revision can be named too.

Revision ID: 0009
Revises: 0008
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

_COLUMNS = "id, owner_id, job_id, output_index, key, mime_type, sha256, bytes, created_at"
_BACKFILL = {
    "sqlite": (
        f"INSERT INTO assets ({_COLUMNS}) SELECT json_extract(o.value, '$.asset_id'), j.owner_id, j.id, "
        "json_extract(o.value, '$.index'), json_extract(o.value, '$.key'), json_extract(o.value, '$.mime_type'), "
        "json_extract(o.value, '$.sha256'), json_extract(o.value, '$.bytes'), COALESCE(j.completed_at, j.updated_at) "
        "FROM jobs j, json_each(j.outputs) o WHERE j.status = 'completed' AND j.outputs IS NOT NULL "
        "ON CONFLICT (id) DO NOTHING"
    ),
    "postgresql": (
        f"INSERT INTO assets ({_COLUMNS}) SELECT o->>'asset_id', j.owner_id, j.id, CAST(o->>'index' AS integer), "
        "o->>'key', o->>'mime_type', o->>'sha256', CAST(o->>'bytes' AS bigint), COALESCE(j.completed_at, j.updated_at) "
        "FROM jobs j, jsonb_array_elements(CAST(j.outputs AS jsonb)) o "
        "WHERE j.status = 'completed' AND j.outputs IS NOT NULL ON CONFLICT (id) DO NOTHING"
    ),
}


def upgrade() -> None:
    op.create_table(
        "assets",
        sa.Column("id", sa.Text(), nullable=False),
        sa.Column("owner_id", sa.Text(), nullable=False),
        sa.Column("job_id", sa.Text(), nullable=False),
        sa.Column("output_index", sa.Integer(), nullable=False),
        sa.Column("key", sa.Text(), nullable=False),
        sa.Column("mime_type", sa.Text(), nullable=False),
        sa.Column("sha256", sa.Text(), nullable=False),
        sa.Column("bytes", sa.BigInteger(), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_assets_job", "assets", ["job_id"], unique=False)
    op.execute(sa.text(_BACKFILL[op.get_bind().dialect.name]))


def downgrade() -> None:
    op.drop_index("ix_assets_job", table_name="assets")
    op.drop_table("assets")
