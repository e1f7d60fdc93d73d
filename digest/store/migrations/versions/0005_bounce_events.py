"""Bounce events and processed reports: asynchronous bounces, complaints and relay webhooks.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-29 10:55:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "bounce_events",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("subscriber_id", sa.Integer(), nullable=True),
        sa.Column("run_id", sa.Integer(), nullable=True),
        sa.Column("delivery_id", sa.Integer(), nullable=True),
        sa.Column("status_code", sa.String(length=16), nullable=True),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("origin", sa.String(length=16), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["delivery_id"],
            ["deliveries.id"],
            name=op.f("fk_bounce_events_delivery_id_deliveries"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["run_id"],
            ["runs.id"],
            name=op.f("fk_bounce_events_run_id_runs"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["subscriber_id"],
            ["subscribers.id"],
            name=op.f("fk_bounce_events_subscriber_id_subscribers"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_bounce_events")),
    )
    op.create_index(op.f("ix_bounce_events_run_id"), "bounce_events", ["run_id"], unique=False)
    op.create_index(
        "ix_bounce_events_subscriber_kind",
        "bounce_events",
        ["subscriber_id", "kind"],
        unique=False,
    )
    op.create_index("ix_deliveries_message_id", "deliveries", ["message_id"], unique=False)
    op.create_table(
        "processed_reports",
        sa.Column("key", sa.String(length=255), nullable=False),
        sa.Column("processed_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_processed_reports")),
    )


def downgrade() -> None:
    op.drop_table("processed_reports")
    op.drop_index("ix_deliveries_message_id", table_name="deliveries")
    op.drop_index("ix_bounce_events_subscriber_kind", table_name="bounce_events")
    op.drop_index(op.f("ix_bounce_events_run_id"), table_name="bounce_events")
    op.drop_table("bounce_events")
