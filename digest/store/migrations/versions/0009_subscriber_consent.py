"""Consent evidence on subscribers: when they asked and confirmed, how, and for web sign-ups a
keyed hash of the client's IP address; confirmations keep their request's client hash.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-06 09:10:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Plain ADD COLUMNs (no table rebuild). Subscribers from before have no record: NULL.
    op.add_column(
        "subscribers", sa.Column("consent_requested_at", sa.DateTime(timezone=True), nullable=True)
    )
    op.add_column(
        "subscribers", sa.Column("consent_confirmed_at", sa.DateTime(timezone=True), nullable=True)
    )
    op.add_column("subscribers", sa.Column("consent_source", sa.String(40), nullable=True))
    op.add_column("subscribers", sa.Column("consent_ip", sa.String(64), nullable=True))
    op.add_column("confirmations", sa.Column("client_key", sa.String(64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("confirmations") as batch:
        batch.drop_column("client_key")
    with op.batch_alter_table("subscribers") as batch:
        for column in ("consent_ip", "consent_source", "consent_confirmed_at"):
            batch.drop_column(column)
        batch.drop_column("consent_requested_at")
