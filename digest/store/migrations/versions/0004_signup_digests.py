"""A sign-up request may name the digests wanted (the sign-up page's digest choice).

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-04 10:00:00

signup_requests.digests is null for every digest, as before digests could be chosen.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("signup_requests", sa.Column("digests", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("signup_requests") as batch:
        batch.drop_column("digests")
