"""Subscribers choose their digests and may pause: the preferences page's columns.

Existing subscribers keep getting every digest (all_digests defaults to true); a sign-up
request may name the digests wanted (signup_requests.digests, null: every digest).

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-04 10:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Plain ADD COLUMN: a batch rebuild on SQLite would drop the table's AUTOINCREMENT.
    op.add_column(
        "subscribers",
        sa.Column("all_digests", sa.Boolean(), server_default=sa.true(), nullable=False),
    )
    op.add_column("subscribers", sa.Column("paused_until", sa.DateTime(timezone=True)))
    op.create_table(
        "subscriptions",
        sa.Column("subscriber_id", sa.Integer(), nullable=False),
        sa.Column("digest", sa.String(length=64), nullable=False),
        sa.ForeignKeyConstraint(
            ["subscriber_id"],
            ["subscribers.id"],
            name=op.f("fk_subscriptions_subscriber_id_subscribers"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("subscriber_id", "digest", name=op.f("pk_subscriptions")),
    )
    op.add_column("signup_requests", sa.Column("digests", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("signup_requests") as batch:
        batch.drop_column("digests")
    op.drop_table("subscriptions")
    with op.batch_alter_table("subscribers") as batch:
        batch.drop_column("paused_until")
        batch.drop_column("all_digests")
