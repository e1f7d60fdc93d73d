"""The schema: subscribers, digest runs, their segments and deliveries, posts sent, leases.

store is the only home of SQL; everything else sees these models through store functions.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
    true,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship
from sqlalchemy.types import TypeDecorator

# Subscriber statuses (CONTRACT.md).
PENDING = "pending"
ACTIVE = "active"
UNSUBSCRIBED = "unsubscribed"
BOUNCED = "bounced"
SUBSCRIBER_STATUSES = (PENDING, ACTIVE, UNSUBSCRIBED, BOUNCED)

# Run statuses: a run is `sending` until every delivery is final, then `finished`.
RUN_SENDING = "sending"
RUN_FINISHED = "finished"

# Delivery statuses. `sending` = claimed by a sender, in flight; `skipped` = the subscriber
# left (unsubscribed, bounced, erased) between the snapshot and the send.
D_PENDING = "pending"
D_SENDING = "sending"
D_SENT = "sent"
D_FAILED = "failed"
D_SKIPPED = "skipped"
DELIVERY_FINAL = (D_SENT, D_FAILED, D_SKIPPED)


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """Aware datetimes in, aware UTC datetimes out, on SQLite (naive storage) and PostgreSQL."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the database; pass an aware one")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)  # type: ignore[no-any-return]
        return value.astimezone(UTC)  # type: ignore[no-any-return]


NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


class Subscriber(Base):
    __tablename__ = "subscribers"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    email: Mapped[str] = mapped_column(String(320))
    # casefold() of email: the unique, case-insensitive identity.
    email_key: Mapped[str] = mapped_column(String(320), unique=True)
    name: Mapped[str] = mapped_column(String(200), default="")
    categories: Mapped[list[str]] = mapped_column(JSON, default=list)
    status: Mapped[str] = mapped_column(String(16), index=True, default=ACTIVE)
    status_reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    status_changed_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
    # True: on every digest of the config, present and future (as before digests were chosen);
    # False: only on the digests in `subscriptions`.
    all_digests: Mapped[bool] = mapped_column(Boolean, default=True, server_default=true())
    # Nothing is sent to the subscriber before this time; posts dated before it are never sent.
    paused_until: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    subscriptions: Mapped[list[Subscription]] = relationship(
        cascade="all, delete-orphan",
        lazy="selectin",
        order_by="Subscription.digest",
        passive_deletes=True,
    )


class Subscription(Base):
    """A subscriber on one digest (for subscribers whose all_digests is False)."""

    __tablename__ = "subscriptions"

    subscriber_id: Mapped[int] = mapped_column(
        ForeignKey("subscribers.id", ondelete="CASCADE"), primary_key=True
    )
    digest: Mapped[str] = mapped_column(String(64), primary_key=True)


class RunArchive(Base):
    """A run's email as the archive shows it: every post, no personal data, rendered once."""

    __tablename__ = "run_archives"

    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True)
    digest: Mapped[str] = mapped_column(String(64), index=True)
    subject: Mapped[str] = mapped_column(Text)
    html: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class DigestState(Base):
    """One row per digest: locked while a run is created; the scheduler's next fire time."""

    __tablename__ = "digest_state"

    digest: Mapped[str] = mapped_column(String(64), primary_key=True)
    next_fire_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    schedule: Mapped[str | None] = mapped_column(String(120), nullable=True)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class Run(Base):
    __tablename__ = "runs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    digest: Mapped[str] = mapped_column(String(64), index=True)
    as_of: Mapped[datetime] = mapped_column(UTCDateTime)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    status: Mapped[str] = mapped_column(String(16), default=RUN_SENDING, index=True)
    # Post ids (source paths) of every new post in this run, newest first.
    post_ids: Mapped[list[str]] = mapped_column(JSON, default=list)
    trigger: Mapped[str] = mapped_column(String(16), default="manual")  # manual | schedule


class Segment(Base):
    """The posts one group of subscribers gets in a run: rendered (and inlined) once."""

    __tablename__ = "segments"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"), index=True)
    post_ids: Mapped[list[str]] = mapped_column(JSON, default=list)


class Delivery(Base):
    """One message of a run to one subscriber: the durable outbox row."""

    __tablename__ = "deliveries"
    __table_args__ = (
        UniqueConstraint("run_id", "subscriber_id", name="uq_deliveries_run_subscriber"),
        Index("ix_deliveries_run_status", "run_id", "status"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"))
    segment_id: Mapped[int] = mapped_column(ForeignKey("segments.id", ondelete="CASCADE"))
    # NULL once the subscriber is erased (`subscribers remove`): no personal data stays.
    subscriber_id: Mapped[int | None] = mapped_column(
        ForeignKey("subscribers.id", ondelete="SET NULL"), nullable=True
    )
    status: Mapped[str] = mapped_column(String(16), default=D_PENDING)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_reply: Mapped[str | None] = mapped_column(Text, nullable=True)
    message_id: Mapped[str | None] = mapped_column(String(255), nullable=True)
    next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    claimed_by: Mapped[str | None] = mapped_column(String(120), nullable=True)
    claimed_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class SentPost(Base):
    """A post included in a run of a digest: never new again for that digest."""

    __tablename__ = "sent_posts"

    digest: Mapped[str] = mapped_column(String(64), primary_key=True)
    post_id: Mapped[str] = mapped_column(String(512), primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"), index=True)


class Worker(Base):
    """A live sender or scheduler process: its heartbeat tells others whether its claims hold."""

    __tablename__ = "workers"

    id: Mapped[str] = mapped_column(String(120), primary_key=True)  # host:pid:random
    host: Mapped[str] = mapped_column(String(255))
    pid: Mapped[int] = mapped_column(Integer)
    kind: Mapped[str] = mapped_column(String(16))  # sender | scheduler
    started_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    heartbeat_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Lease(Base):
    """A named lease (the one scheduler per database); it expires if its holder dies."""

    __tablename__ = "leases"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    holder: Mapped[str] = mapped_column(String(120))
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)


# Core handles on the outbox tables, for the statements of the hot path (built once, no ORM).
runs_table = Base.metadata.tables["runs"]
deliveries_table = Base.metadata.tables["deliveries"]
workers_table = Base.metadata.tables["workers"]
subscribers_table = Base.metadata.tables["subscribers"]
subscriptions_table = Base.metadata.tables["subscriptions"]
