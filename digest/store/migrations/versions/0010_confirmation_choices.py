"""A confirmation link keeps the choices of its own request, and link voiding counts status
changes (subscribers.status_serial) instead of comparing hosts' clocks.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-06 09:45:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Plain ADD COLUMNs (no table rebuild). Confirmations from before have no serial or
    # choices (NULL): they are judged by time, as before, and confirm the record as it is.
    op.add_column(
        "subscribers",
        sa.Column("status_serial", sa.Integer(), nullable=False, server_default="0"),
    )
    op.add_column("confirmations", sa.Column("status_serial", sa.Integer(), nullable=True))
    op.add_column("confirmations", sa.Column("choices", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("confirmations") as batch:
        batch.drop_column("choices")
        batch.drop_column("status_serial")
    with op.batch_alter_table("subscribers") as batch:
        batch.drop_column("status_serial")
