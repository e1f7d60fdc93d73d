"""The subscriber list: add, update, unsubscribe, erase, list, and the one status transition.

store is the only home of SQL: the cli, web and delivery call these; addresses are checked here.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, delete, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import flag_modified

from digest.addresses import clean_name, email_key, normalise_email
from digest.errors import BadInputError, InvalidAddressError, NotFoundError
from digest.store import Store
from digest.store.bounce_events import forget_subscriber
from digest.store.models import (
    ACTIVE,
    BOUNCED,
    D_PENDING,
    D_SENDING,
    PENDING,
    SUBSCRIBER_STATUSES,
    UNSUBSCRIBED,
    Confirmation,
    Delivery,
    Subscriber,
    Subscription,
    new_link_key,
    utcnow,
)
from digest.store.subscriptions import clean_categories, clean_digests, set_digests

WEB_SOURCE = "web"  # the consent source of a sign-up on the web form
IMPORT_PREFIX = "import:"  # the consent source of an import: import:mailchimp, import:csv

# Statuses that are the subscriber's (or their mailbox's) choice: only --resubscribe undoes them.
KEPT_STATUSES = (UNSUBSCRIBED, BOUNCED)


@dataclass(frozen=True)
class Consent:
    """How and when a subscriber asked and confirmed: the evidence a sender must keep.

    `source`: web, cli, import:<service>...; `ip`: for web sign-ups a keyed hash of the client's
    IP address (keyed with web.secret), never the address itself.
    """

    requested_at: datetime | None = None
    confirmed_at: datetime | None = None
    source: str | None = None
    ip: str | None = None

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready: times as ISO 8601 with offset, or null."""
        return {
            "requested_at": self.requested_at.isoformat() if self.requested_at else None,
            "confirmed_at": self.confirmed_at.isoformat() if self.confirmed_at else None,
            "source": self.source,
            "ip": self.ip,
        }

    def write_to(self, sub: Subscriber) -> None:
        """Record this consent on a Subscriber row (every field, None included)."""
        sub.consent_requested_at = self.requested_at
        sub.consent_confirmed_at = self.confirmed_at
        sub.consent_source = self.source
        sub.consent_ip = self.ip


def consent_of(sub: Subscriber) -> Consent:
    """The consent record of a Subscriber row."""
    return Consent(
        sub.consent_requested_at, sub.consent_confirmed_at, sub.consent_source, sub.consent_ip
    )


@dataclass(frozen=True)
class SubscriberRow:
    """A subscriber as the doors see it (a detached snapshot, no session needed)."""

    id: int
    email: str
    name: str
    categories: tuple[str, ...]
    status: str
    status_reason: str | None
    created_at: datetime
    updated_at: datetime
    # What the subscriber's links are bound to: never shown, never in as_dict().
    link_key: str = field(default="", repr=False)
    legacy_links: bool = field(default=False, repr=False)
    status_changed_at: datetime | None = field(default=None, repr=False)
    all_digests: bool = True  # on every digest of the config, present and future
    digests: tuple[str, ...] = ()  # the digests chosen, when not all_digests
    paused_until: datetime | None = None
    timezone: str | None = None  # IANA name; None: site.timezone
    consent: Consent = field(default_factory=Consent)

    def digest_names(self, every_digest: Iterable[str]) -> list[str]:
        """The digests this subscriber is on, given the names of every configured digest."""
        return sorted(every_digest) if self.all_digests else list(self.digests)

    def as_dict(self, every_digest: Iterable[str] = ()) -> dict[str, Any]:
        """JSON-ready: categories and digests as lists, times as ISO 8601 with offset."""
        return {
            "id": self.id,
            "email": self.email,
            "name": self.name,
            "categories": list(self.categories),
            "digests": self.digest_names(every_digest),
            "all_digests": self.all_digests,
            "status": self.status,
            "status_reason": self.status_reason,
            "paused_until": self.paused_until.isoformat() if self.paused_until else None,
            "timezone": self.timezone,
            "status_changed_at": (
                self.status_changed_at.isoformat() if self.status_changed_at else None
            ),
            "created_at": self.created_at.isoformat(),
            "updated_at": self.updated_at.isoformat(),
            "consent": self.consent.as_dict(),
        }


def row_of(sub: Subscriber) -> SubscriberRow:
    """The plain, frozen view of a Subscriber row that callers outside store get."""
    return SubscriberRow(
        id=sub.id,
        email=sub.email,
        name=sub.name,
        categories=tuple(sub.categories or ()),
        status=sub.status,
        status_reason=sub.status_reason,
        created_at=sub.created_at,
        updated_at=sub.updated_at,
        link_key=sub.link_key,
        legacy_links=bool(sub.legacy_links),
        status_changed_at=sub.status_changed_at,
        all_digests=sub.all_digests,
        digests=tuple(s.digest for s in sub.subscriptions) if not sub.all_digests else (),
        paused_until=sub.paused_until,
        consent=consent_of(sub),
        timezone=sub.timezone,
    )


def renew_link_key(sub: Subscriber) -> None:
    """A (re-)subscription: links made for an earlier subscription of the address stop working."""
    sub.link_key, sub.legacy_links = new_link_key(), False


def _email(address: str) -> str:
    try:
        return normalise_email(address)
    except ValueError as exc:
        raise InvalidAddressError(str(exc)) from None


def _name(name: str | None, address: str) -> str:
    try:
        return clean_name(name)
    except ValueError as exc:
        raise InvalidAddressError(f"{exc} (subscriber {address})") from None


def clean_timezone(value: str) -> str:
    """An IANA time zone name as given (`""`: none, site.timezone); BadInputError otherwise."""
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    name = value.strip()
    if not name:
        return ""
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise BadInputError(
            f"unknown time zone {name!r} (an IANA name like Europe/London or America/New_York)"
        ) from None
    return name


def check_status(status: str) -> str:
    """The status, if it is one of SUBSCRIBER_STATUSES; else BadInputError naming them."""
    if status not in SUBSCRIBER_STATUSES:
        raise BadInputError(
            f"unknown subscriber status {status!r} (one of {', '.join(SUBSCRIBER_STATUSES)})"
        )
    return status


def _lookup_key(email: str) -> str:
    """The email_key of an address as typed (normalised when it is valid)."""
    try:
        return email_key(normalise_email(email))
    except ValueError:
        return email_key(email.strip())


def _get(session: Session, email: str) -> Subscriber | None:
    return session.scalars(
        select(Subscriber).where(Subscriber.email_key == _lookup_key(email))
    ).one_or_none()


def _apply(
    sub: Subscriber,
    *,
    name: str | None,
    categories: list[str] | None,
    digests: list[str] | None,
    all_digests: bool,
    status: str,
    resubscribe: bool,
    now: datetime,
    source: str = "cli",
) -> None:
    """Update an existing subscriber with the fields given, as `add` promises."""
    name_before, categories_before = sub.name, list(sub.categories or ())
    if name is not None and sub.name != name:
        sub.name = name
    if categories is not None and list(sub.categories or ()) != categories:
        sub.categories = categories
    changed = (digests is not None or all_digests) and set_digests(sub, digests)
    if sub.status in KEPT_STATUSES:
        if resubscribe:
            sub.status, sub.status_reason, sub.status_changed_at = status, "resubscribed", now
            sub.status_serial = (sub.status_serial or 0) + 1
            Consent(requested_at=now, source=source).write_to(sub)
            renew_link_key(sub)
            changed = True
    elif sub.status == PENDING and status == ACTIVE:
        # An explicit add activates a web sign-up that has not confirmed yet.
        sub.status, sub.status_reason, sub.status_changed_at = ACTIVE, "added", now
        sub.status_serial = (sub.status_serial or 0) + 1
        changed = True
    if changed or sub.name != name_before or list(sub.categories or ()) != categories_before:
        _touch(sub, now)


def _touch(sub: Subscriber, now: datetime) -> None:
    sub.updated_at = now
    # Even when equal to the old value: else the column's onupdate=utcnow would replace it.
    flag_modified(sub, "updated_at")


def new_subscriber(
    address: str,
    *,
    name: str | None,
    categories: list[str] | None,
    status: str,
    reason: str,
    now: datetime,
    digests: list[str] | None = None,
    consent: Consent | None = None,
) -> Subscriber:
    """A new Subscriber row (not yet added to a session) for an already-validated address.

    `digests` None: on every digest (present and future).
    """
    sub = Subscriber(
        email=address,
        email_key=email_key(address),
        name=name or "",
        categories=categories or [],
        status=status,
        status_reason=reason,
        status_changed_at=now,
        created_at=now,
        updated_at=now,
        link_key=new_link_key(),
        legacy_links=False,
        all_digests=digests is None,
        subscriptions=[Subscription(digest=d) for d in digests or ()],
    )
    (consent or Consent()).write_to(sub)
    return sub


def add_subscriber(
    store: Store,
    email: str,
    *,
    name: str | None = None,
    categories: Sequence[str] | None = None,
    digests: Sequence[str] | None = None,
    all_digests: bool = False,
    resubscribe: bool = False,
    status: str = ACTIVE,
    now: datetime | None = None,
    source: str = "cli",
    timezone: str | None = None,
) -> tuple[SubscriberRow, bool]:
    """Add a subscriber, or update the fields given of an existing one; (row, created).

    An unsubscribed or bounced address keeps its status unless resubscribe=True. `digests`
    None: a new subscriber is on every digest, an existing one keeps theirs (all_digests=True
    puts them back on every digest). A new (or resubscribed) subscriber's consent record says
    they asked now, through `source`; nobody confirmed by mail.
    """
    if all_digests and digests is not None:
        raise BadInputError("give either digests or all_digests, not both")
    address = _email(email)
    clean = _name(name, address) if name is not None else None
    cats = clean_categories(categories) if categories is not None else None
    chosen = clean_digests(digests) if digests is not None else None
    check_status(status)
    zone = clean_timezone(timezone) if timezone is not None else None
    when = now or utcnow()
    for attempt in (1, 2):
        try:
            with store.write_transaction() as session:
                sub = _get(session, address)
                if sub is not None:
                    _apply(
                        sub,
                        name=clean,
                        categories=cats,
                        digests=chosen,
                        all_digests=all_digests,
                        status=status,
                        resubscribe=resubscribe,
                        now=when,
                        source=source,
                    )
                    if zone is not None and sub.timezone != (zone or None):
                        sub.timezone = zone or None
                        _touch(sub, when)
                    session.flush()
                    return row_of(sub), False
                sub = new_subscriber(
                    address,
                    name=clean,
                    categories=cats,
                    status=status,
                    reason="added",
                    now=when,
                    digests=chosen,
                    consent=Consent(requested_at=when, source=source),
                )
                sub.timezone = zone or None
                session.add(sub)
                session.flush()
                return row_of(sub), True
        except IntegrityError:
            # Another process added the same address between our look-up and insert (PostgreSQL).
            if attempt == 2:
                raise
    raise AssertionError("unreachable")  # pragma: no cover


def find_subscriber(store: Store, email: str) -> SubscriberRow | None:
    """The subscriber with this address (case-insensitive), or None."""
    with store.session() as session:
        sub = _get(session, email)
        return row_of(sub) if sub is not None else None


def _require(session: Session, email: str) -> Subscriber:
    sub = _get(session, email)
    if sub is None:
        raise NotFoundError(f"no subscriber {email.strip()!r}")
    return sub


def remove_subscriber(store: Store, email: str) -> SubscriberRow:
    """Erase a subscriber and their personal data; deliveries already made stay, anonymous.

    Their link key goes with the row and their id is never given again: every link ever sent to
    them stops working for good.
    """
    with store.write_transaction() as session:
        sub = _require(session, email)
        row = row_of(sub)
        # Explicit, not left to ON DELETE: SQLite only honours it with PRAGMA foreign_keys.
        session.execute(
            delete(Delivery).where(
                Delivery.subscriber_id == sub.id, Delivery.status.in_((D_PENDING, D_SENDING))
            )
        )
        # An SMTP reply can quote the address: it goes with the link.
        session.execute(
            update(Delivery)
            .where(Delivery.subscriber_id == sub.id)
            .values(subscriber_id=None, last_reply=None)
        )
        # The sign-up's confirmations go too: their links name this subscriber.
        session.execute(delete(Confirmation).where(Confirmation.subscriber_id == sub.id))
        forget_subscriber(session, sub.id)
        session.execute(delete(Subscriber).where(Subscriber.id == sub.id))
    return row


def change_status(
    db: Session | Connection,
    subscriber_id: int,
    status: str,
    reason: str | None,
    now: datetime,
    *,
    only_from: Collection[str] | None = None,
) -> None:
    """The one subscriber status transition, inside the caller's transaction.

    Nothing changes when the subscriber already has `status`, or (with `only_from`) when their
    status is not one of those. A subscriber loaded in the session sees the new values.
    """
    stmt = update(Subscriber).where(Subscriber.id == subscriber_id, Subscriber.status != status)
    if only_from is not None:
        stmt = stmt.where(Subscriber.status.in_(list(only_from)))
    db.execute(
        stmt.values(
            status=status,
            status_reason=reason,
            status_changed_at=now,
            updated_at=now,
            # The counter a confirmation link compares: no clock of any host decides.
            status_serial=Subscriber.status_serial + 1,
        )
    )


def unsubscribe(
    store: Store, email: str, *, reason: str = "cli", now: datetime | None = None
) -> SubscriberRow:
    """Mark a subscriber unsubscribed (kept, never mailed); a no-op when they already are."""
    with store.write_transaction() as session:
        sub = _require(session, email)
        change_status(session, sub.id, UNSUBSCRIBED, reason, now or utcnow())
        return row_of(sub)


def set_status(
    store: Store,
    subscriber_id: int,
    status: str,
    reason: str | None,
    *,
    now: datetime | None = None,
) -> SubscriberRow:
    """Set a subscriber's status by id (bounces from delivery, confirmations from the web)."""
    check_status(status)
    with store.write_transaction() as session:
        sub = session.get(Subscriber, subscriber_id)
        if sub is None:
            raise NotFoundError(f"no subscriber with id {subscriber_id}")
        change_status(session, sub.id, status, reason, now or utcnow())
        return row_of(sub)


def list_subscribers(store: Store, status: str | None = None) -> list[SubscriberRow]:
    """Every subscriber (or those with one status), oldest first."""
    query = select(Subscriber).order_by(Subscriber.created_at, Subscriber.id)
    if status is not None:
        query = query.where(Subscriber.status == check_status(status))
    with store.session() as session:
        return [row_of(sub) for sub in session.scalars(query)]
