"""Links that cannot act on the wrong person, and the sign-up mail queue with its limits.

Subscriber ids are never reused on SQLite (AUTOINCREMENT: the table is rebuilt, ids kept);
every subscriber gets a random link key (rows from before keep their old links: legacy_links);
signup_requests (POST /subscribe as received, decided outside the request), confirmations (the
durable queue of confirmation mails, one nonce each) and signup_attempts (the per-client limit).

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-02 10:00:00
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("subscribers", sa.Column("link_key", sa.String(length=64), nullable=True))
    op.add_column(
        "subscribers",
        sa.Column("legacy_links", sa.Boolean(), nullable=False, server_default=sa.true()),
    )
    connection = op.get_bind()
    subscribers = sa.table("subscribers", sa.column("id", sa.Integer), sa.column("link_key"))
    ids = connection.execute(sa.select(subscribers.c.id)).scalars().all()
    for subscriber_id in ids:
        connection.execute(
            subscribers.update()
            .where(subscribers.c.id == subscriber_id)
            .values(link_key=secrets.token_urlsafe(16))
        )
    # SQLite: a rebuild (ids and rows kept) is the only way to add AUTOINCREMENT. PostgreSQL's
    # sequences never hand out a number twice already: there, two ALTERs.
    sqlite = connection.dialect.name == "sqlite"
    with op.batch_alter_table(
        "subscribers",
        recreate="always" if sqlite else "auto",
        table_kwargs={"sqlite_autoincrement": True},
    ) as batch:
        batch.alter_column("link_key", existing_type=sa.String(length=64), nullable=False)
        batch.alter_column("legacy_links", existing_type=sa.Boolean(), server_default=None)

    op.create_table(
        "confirmations",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("subscriber_id", sa.Integer(), nullable=False),
        sa.Column("nonce", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("used_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("claimed_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["subscriber_id"],
            ["subscribers.id"],
            name=op.f("fk_confirmations_subscriber_id_subscribers"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_confirmations")),
        sa.UniqueConstraint("nonce", name=op.f("uq_confirmations_nonce")),
        sqlite_autoincrement=True,
    )
    op.create_index(
        op.f("ix_confirmations_subscriber_id"), "confirmations", ["subscriber_id"], unique=False
    )
    op.create_index(
        "ix_confirmations_due", "confirmations", ["status", "next_attempt_at"], unique=False
    )
    op.create_table(
        "signup_requests",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("email", sa.String(length=320), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=True),
        sa.Column("categories", sa.JSON(), nullable=True),
        sa.Column("client_key", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_signup_requests")),
        sqlite_autoincrement=True,
    )
    op.create_table(
        "signup_attempts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("client_key", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_signup_attempts")),
    )
    op.create_index(
        "ix_signup_attempts_client",
        "signup_attempts",
        ["client_key", "created_at"],
        unique=False,
    )


def downgrade() -> None:
    op.drop_index("ix_signup_attempts_client", table_name="signup_attempts")
    op.drop_table("signup_attempts")
    op.drop_table("signup_requests")
    op.drop_index("ix_confirmations_due", table_name="confirmations")
    op.drop_index(op.f("ix_confirmations_subscriber_id"), table_name="confirmations")
    op.drop_table("confirmations")
    with op.batch_alter_table("subscribers") as batch:
        batch.drop_column("legacy_links")
        batch.drop_column("link_key")
