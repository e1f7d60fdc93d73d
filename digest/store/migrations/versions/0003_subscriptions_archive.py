"""Per-digest subscriptions, pauses, and the archive of each run's email.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-29 12:00:00.000000

Existing subscribers keep getting every digest: all_digests defaults to true.
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
    # Plain ADD COLUMN (no table rebuild): SQLite keeps the table's AUTOINCREMENT (0002).
    op.add_column(
        "subscribers",
        sa.Column("all_digests", sa.Boolean(), server_default=sa.true(), nullable=False),
    )
    op.add_column(
        "subscribers", sa.Column("paused_until", sa.DateTime(timezone=True), nullable=True)
    )
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
    op.create_table(
        "run_archives",
        sa.Column("run_id", sa.Integer(), nullable=False),
        sa.Column("digest", sa.String(length=64), nullable=False),
        sa.Column("subject", sa.Text(), nullable=False),
        sa.Column("html", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["run_id"], ["runs.id"], name=op.f("fk_run_archives_run_id_runs"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("run_id", name=op.f("pk_run_archives")),
    )
    op.create_index(op.f("ix_run_archives_digest"), "run_archives", ["digest"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_run_archives_digest"), table_name="run_archives")
    op.drop_table("run_archives")
    op.drop_table("subscriptions")
    with op.batch_alter_table("subscribers", table_kwargs={"sqlite_autoincrement": True}) as batch:
        batch.drop_column("paused_until")
        batch.drop_column("all_digests")
