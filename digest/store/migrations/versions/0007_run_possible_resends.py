"""runs.possible_resends (messages that may have gone out twice, over every process); the
deliveries index gains `id`, so a claim on a million-row run reads 32 rows, not a sort.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-28 10:00:00
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
    # A plain ADD COLUMN (no table rebuild): SQLite keeps the table as it is.
    op.add_column(
        "runs", sa.Column("possible_resends", sa.Integer(), nullable=False, server_default="0")
    )
    op.drop_index("ix_deliveries_run_status", table_name="deliveries")
    op.create_index(
        "ix_deliveries_run_status_id", "deliveries", ["run_id", "status", "id"], unique=False
    )


def downgrade() -> None:
    op.drop_index("ix_deliveries_run_status_id", table_name="deliveries")
    op.create_index("ix_deliveries_run_status", "deliveries", ["run_id", "status"], unique=False)
    with op.batch_alter_table("runs") as batch:
        batch.drop_column("possible_resends")
