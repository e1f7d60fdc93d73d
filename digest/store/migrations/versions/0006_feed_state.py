"""Feed sources: the last good fetch of a feed (ETag, Last-Modified, body), undated entries' dates.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-29 11:30:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "feed_state",
        sa.Column("feed_key", sa.String(length=64), nullable=False),
        sa.Column("feed_url", sa.Text(), nullable=False),
        sa.Column("etag", sa.String(length=512), nullable=True),
        sa.Column("last_modified", sa.String(length=64), nullable=True),
        sa.Column("body", sa.LargeBinary(), nullable=True),
        sa.Column("fetched_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("feed_key", name=op.f("pk_feed_state")),
    )
    op.create_table(
        "feed_entries",
        sa.Column("feed_key", sa.String(length=64), nullable=False),
        sa.Column("entry_id", sa.String(length=512), nullable=False),
        sa.Column("first_seen", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("feed_key", "entry_id", name=op.f("pk_feed_entries")),
    )


def downgrade() -> None:
    op.drop_table("feed_entries")
    op.drop_table("feed_state")
