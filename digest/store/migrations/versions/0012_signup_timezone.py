"""A web sign-up keeps the browser's time zone until the mailer decides it (deliver: local_time).

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-06 10:20:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("signup_requests", sa.Column("timezone", sa.String(64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("signup_requests") as batch:
        batch.drop_column("timezone")
