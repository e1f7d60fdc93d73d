"""workers.mark_window: how many sent messages a sender records in one commit, so whoever takes
over a dead sender's deliveries counts that many per claimed batch as possibly sent.

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-29 18:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # A plain ADD COLUMN (no table rebuild). NULL: a sender from before, which recorded each
    # message before the next body went (a window of one).
    op.add_column("workers", sa.Column("mark_window", sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("workers") as batch:
        batch.drop_column("mark_window")
