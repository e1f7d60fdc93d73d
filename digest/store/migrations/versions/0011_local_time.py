"""Local-time delivery: each subscriber's time zone, and the edition a run of a local_time
digest is (one run per scheduled wall time, unique per digest).

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-06 09:40:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Plain ADD COLUMNs: subscribers from before have no zone (site.timezone), runs no edition.
    op.add_column("subscribers", sa.Column("timezone", sa.String(64), nullable=True))
    op.add_column("runs", sa.Column("edition", sa.String(32), nullable=True))
    op.create_index("uq_runs_digest_edition", "runs", ["digest", "edition"], unique=True)


def downgrade() -> None:
    op.drop_index("uq_runs_digest_edition", table_name="runs")
    with op.batch_alter_table("runs") as batch:
        batch.drop_column("edition")
    with op.batch_alter_table("subscribers") as batch:
        batch.drop_column("timezone")
