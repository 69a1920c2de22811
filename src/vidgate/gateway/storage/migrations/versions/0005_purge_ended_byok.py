"""Provider keys a request brought are kept only while its job runs: clear those of ended jobs

Rows written before keys were sealed and purged at the end of their job still hold them in plain
text. Those of live jobs (and of a cancelled job whose upstream clean-up is still due) stay: the
worker reads them as they are, and clears them when the job ends.

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        sa.text(
            "UPDATE jobs SET byok = NULL WHERE byok IS NOT NULL "
            "AND status IN ('completed', 'failed', 'cancelled', 'expired') AND next_run_at IS NULL"
        )
    )


def downgrade() -> None:
    pass  # cleared keys are not brought back
