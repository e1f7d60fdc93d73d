"""Relay rules: rates shared by every sender (rate_paces, rate_counts) and the relay that took
each message (deliveries.relay, for history's `relays`).

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-06 09:45:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "rate_paces",
        sa.Column("key", sa.String(200), nullable=False),
        sa.Column("next_free", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_rate_paces")),
    )
    op.create_table(
        "rate_counts",
        sa.Column("key", sa.String(200), nullable=False),
        sa.Column("slice", sa.Integer(), nullable=False),
        sa.Column("booked", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("key", "slice", name=op.f("pk_rate_counts")),
    )
    # A plain ADD COLUMN (no table rebuild); NULL for messages sent before relays had names.
    op.add_column("deliveries", sa.Column("relay", sa.String(64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("deliveries") as batch:
        batch.drop_column("relay")
    op.drop_table("rate_counts")
    op.drop_table("rate_paces")
