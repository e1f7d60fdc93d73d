"""The schema: subscribers, digest runs, their segments and deliveries, posts sent, leases.

store is the only home of SQL; everything else sees these models through store functions.
"""

from __future__ import annotations

import secrets
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
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


# Confirmation mails (the sign-up queue that `digest serve` works through).
C_QUEUED = "queued"
C_SENT = "sent"
C_FAILED = "failed"  # refused (5xx) or never sendable before the link expired


def utcnow() -> datetime:
    return datetime.now(UTC)


def sqlite_stamp(when: datetime) -> str:
    """An aware datetime as UTCDateTime stores it on SQLite (naive UTC text), for the hot paths
    that write plain SQL without the type machinery (claims, the recorder)."""
    return when.astimezone(UTC).replace(tzinfo=None).isoformat(" ", "microseconds")


def new_link_key() -> str:
    """A random key every link of one subscription is bound to (128 bits, URL-safe)."""
    return secrets.token_urlsafe(16)


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
    # Never reuse the id of an erased subscriber (SQLite's default reuses the highest one).
    __table_args__ = ({"sqlite_autoincrement": True},)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    email: Mapped[str] = mapped_column(String(320))
    # casefold() of email: the unique, case-insensitive identity.
    email_key: Mapped[str] = mapped_column(String(320), unique=True)
    name: Mapped[str] = mapped_column(String(200), default="")
    categories: Mapped[list[str]] = mapped_column(JSON, default=list)
    status: Mapped[str] = mapped_column(String(16), index=True, default=ACTIVE)
    status_reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    status_changed_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # One more at every status change: a confirmation link issued at another count is void
    # (a counter, not a time: the web host's clock may run ahead of the others).
    status_serial: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
    # Every unsubscribe link carries this key: `remove` destroys it, a re-subscription replaces it.
    link_key: Mapped[str] = mapped_column(String(64), default=new_link_key)
    # Rows from before link keys: their old id-only unsubscribe links still work
    # (see docs/security.md).
    legacy_links: Mapped[bool] = mapped_column(Boolean, default=False)

    # True: on every digest of the config, present and future (as before digests were chosen);
    # False: only on the digests in `subscriptions`.
    all_digests: Mapped[bool] = mapped_column(Boolean, default=True, server_default=true())
    # Nothing is sent to the subscriber before this time; posts dated before it are never sent.
    paused_until: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    # Consent evidence: when they asked and confirmed, how (web, cli, import:mailchimp...), and
    # for web sign-ups a keyed hash of the client's IP address (never the address itself).
    consent_requested_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    consent_confirmed_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    consent_source: Mapped[str | None] = mapped_column(String(40), nullable=True)
    consent_ip: Mapped[str | None] = mapped_column(String(64), nullable=True)
    # IANA time zone for deliver: local_time; None: site.timezone.
    timezone: Mapped[str | None] = mapped_column(String(64), nullable=True)
    subscriptions: Mapped[list[Subscription]] = relationship(
        cascade="all, delete-orphan",
        lazy="selectin",
        order_by="Subscription.digest",
        passive_deletes=True,
    )


class Confirmation(Base):
    """One confirmation link issued to a sign-up: the mail to send (a durable queue) and the
    nonce its link carries. Used once; void once the subscriber's status changes after it."""

    __tablename__ = "confirmations"
    __table_args__ = (
        Index("ix_confirmations_due", "status", "next_attempt_at"),
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    subscriber_id: Mapped[int] = mapped_column(
        ForeignKey("subscribers.id", ondelete="CASCADE"), index=True
    )
    nonce: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    status: Mapped[str] = mapped_column(String(16), default=C_QUEUED)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    claimed_until: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    last_error: Mapped[str | None] = mapped_column(Text, nullable=True)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    # The sign-up request's client (a keyed hash of its IP address): the consent record.
    client_key: Mapped[str | None] = mapped_column(String(64), nullable=True)
    # The subscriber's status_serial when issued (NULL: issued before the counter existed).
    status_serial: Mapped[int | None] = mapped_column(Integer, nullable=True)
    # The choices of the request this link answers (name, categories, digests), saved when it
    # is confirmed: a later request, anyone's, never changes what an earlier link confirms.
    choices: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)


class SignupRequest(Base):
    """A POST /subscribe as received: the mailer decides what it does, outside the request, so
    the request does the same work (this one insert) whatever the address."""

    __tablename__ = "signup_requests"
    __table_args__ = ({"sqlite_autoincrement": True},)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    email: Mapped[str] = mapped_column(String(320))
    name: Mapped[str | None] = mapped_column(String(200), nullable=True)
    categories: Mapped[list[str] | None] = mapped_column(JSON, nullable=True)
    digests: Mapped[list[str] | None] = mapped_column(JSON, nullable=True)  # None: every digest
    client_key: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # The browser's time zone (IANA), for deliver: local_time; None when it sent none.
    timezone: Mapped[str | None] = mapped_column(String(64), nullable=True)


class SignupAttempt(Base):
    """A POST /subscribe from one client address (a keyed hash of it): the per-hour limit."""

    __tablename__ = "signup_attempts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    client_key: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    __table_args__ = (Index("ix_signup_attempts_client", "client_key", "created_at"),)


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
    # A local_time digest has one run per edition (NULL for at_once runs: never equal).
    __table_args__ = (Index("uq_runs_digest_edition", "digest", "edition", unique=True),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    digest: Mapped[str] = mapped_column(String(64), index=True)
    as_of: Mapped[datetime] = mapped_column(UTCDateTime)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    status: Mapped[str] = mapped_column(String(16), default=RUN_SENDING, index=True)
    # Post ids (source paths) of every new post in this run, newest first.
    post_ids: Mapped[list[str]] = mapped_column(JSON, default=list)
    trigger: Mapped[str] = mapped_column(String(16), default="manual")  # manual | schedule
    # Messages that may have gone out twice (in flight at a crash, or unanswered after the
    # final dot, then sent again), summed over every process that worked on the run.
    possible_resends: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    # deliver: local_time: the edition's scheduled wall time ("2026-03-09T09:00"); it goes to
    # each zone as that zone's clock reaches it. None for an at_once run.
    edition: Mapped[str | None] = mapped_column(String(32), nullable=True)


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
        # id last: a claim reads a run's pending rows in id order, LIMIT 32, off the index
        # instead of sorting every pending row of a million-row run.
        Index("ix_deliveries_run_status_id", "run_id", "status", "id"),
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
    relay: Mapped[str | None] = mapped_column(String(64), nullable=True)  # the relay that took it


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
    # A sender's delivery.mark_window (NULL: before it existed, a window of one).
    mark_window: Mapped[int | None] = mapped_column(Integer, nullable=True)


class Lease(Base):
    """A named lease (the one scheduler per database); it expires if its holder dies."""

    __tablename__ = "leases"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    holder: Mapped[str] = mapped_column(String(120))
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)


# Kinds of bounce events (asynchronous reports: DSN, ARF, relay webhooks).
EVENT_HARD = "hard"
EVENT_SOFT = "soft"
EVENT_COMPLAINT = "complaint"


class BounceEvent(Base):
    """One bounce or complaint report about one recipient, as it arrived after the send."""

    __tablename__ = "bounce_events"
    __table_args__ = (Index("ix_bounce_events_subscriber_kind", "subscriber_id", "kind"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))  # hard | soft | complaint
    # NULL once the subscriber is erased; the run and delivery stay for history's counts.
    subscriber_id: Mapped[int | None] = mapped_column(
        ForeignKey("subscribers.id", ondelete="SET NULL"), nullable=True
    )
    run_id: Mapped[int | None] = mapped_column(
        ForeignKey("runs.id", ondelete="SET NULL"), nullable=True, index=True
    )
    delivery_id: Mapped[int | None] = mapped_column(
        ForeignKey("deliveries.id", ondelete="SET NULL"), nullable=True
    )
    status_code: Mapped[str | None] = mapped_column(String(16), nullable=True)  # 5.1.1
    reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    origin: Mapped[str] = mapped_column(String(16))  # mail, ses, mailgun, postmark, sendgrid
    received_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


# A DSN or complaint that quotes our Message-ID finds its delivery through this index.
Index("ix_deliveries_message_id", Delivery.message_id)


class ProcessedReport(Base):
    """A report already acted on (its Message-ID, or a relay's event id): never counted twice."""

    __tablename__ = "processed_reports"

    key: Mapped[str] = mapped_column(String(255), primary_key=True)
    processed_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class FeedState(Base):
    """The last good fetch of a source feed: validators for a conditional GET, and its body."""

    __tablename__ = "feed_state"

    feed_key: Mapped[str] = mapped_column(String(64), primary_key=True)  # sha256 of the URL
    feed_url: Mapped[str] = mapped_column(Text)
    etag: Mapped[str | None] = mapped_column(String(512), nullable=True)
    last_modified: Mapped[str | None] = mapped_column(String(64), nullable=True)
    body: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    fetched_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class FeedEntry(Base):
    """When an undated feed entry was first seen: its date from then on."""

    __tablename__ = "feed_entries"

    feed_key: Mapped[str] = mapped_column(String(64), primary_key=True)
    entry_id: Mapped[str] = mapped_column(String(512), primary_key=True)
    first_seen: Mapped[datetime] = mapped_column(UTCDateTime)


class RatePace(Base):
    """A rate shared by every sender of a relay (store.rates): when its next slot is free."""

    __tablename__ = "rate_paces"

    key: Mapped[str] = mapped_column(String(200), primary_key=True)  # relay, or relay + group
    next_free: Mapped[float] = mapped_column(Float, default=0.0)  # seconds since the epoch


class RateCount(Base):
    """Messages booked on a per-hour or per-day limit, per slice of its window (store.rates)."""

    __tablename__ = "rate_counts"

    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    slice: Mapped[int] = mapped_column(Integer, primary_key=True)  # seconds since epoch // width
    booked: Mapped[int] = mapped_column(Integer, default=0)


# Core handles on the outbox tables, for the statements of the hot path (built once, no ORM).
runs_table = Base.metadata.tables["runs"]
deliveries_table = Base.metadata.tables["deliveries"]
workers_table = Base.metadata.tables["workers"]
subscribers_table = Base.metadata.tables["subscribers"]
confirmations_table = Base.metadata.tables["confirmations"]
subscriptions_table = Base.metadata.tables["subscriptions"]
