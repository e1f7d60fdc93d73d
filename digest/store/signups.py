"""Sign-ups and one-click unsubscribes by subscriber id: the store calls behind `digest serve`.

web ─► store: each status change here is one write transaction that reads and decides under lock.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlalchemy.orm import Session

from digest.addresses import clean_name, email_key, normalise_email
from digest.errors import InvalidAddressError
from digest.store import Store
from digest.store.db_errors import database_error
from digest.store.models import ACTIVE, PENDING, UNSUBSCRIBED, Subscriber, utcnow
from digest.store.subscribers import (
    SubscriberRow,
    change_status,
    new_subscriber,
    row_of,
)
from digest.store.subscriptions import clean_categories

# Statuses a one-click unsubscribe turns into `unsubscribed`; bounced stays bounced.
UNSUBSCRIBABLE = (PENDING, ACTIVE)


@dataclass(frozen=True)
class Signup:
    """What a sign-up request did: the subscriber, and whether a confirmation is to be mailed."""

    subscriber: SubscriberRow
    created: bool
    needs_confirmation: bool  # False for an address that is already active


def get_subscriber(store: Store, subscriber_id: int) -> SubscriberRow | None:
    """The subscriber with this id, or None (erased)."""
    with store.session() as session:
        sub = session.get(Subscriber, subscriber_id)
        return row_of(sub) if sub is not None else None


def unsubscribe_id(
    store: Store, subscriber_id: int, *, reason: str, now: datetime | None = None
) -> SubscriberRow | None:
    """Unsubscribe by id (idempotent; bounced stays bounced); None when erased."""
    with store.write_transaction() as session:
        sub = session.get(Subscriber, subscriber_id)
        if sub is None:
            return None
        change_status(
            session, sub.id, UNSUBSCRIBED, reason, now or utcnow(), only_from=UNSUBSCRIBABLE
        )
        return row_of(sub)


def confirm_subscriber(
    store: Store, subscriber_id: int, *, now: datetime | None = None
) -> SubscriberRow | None:
    """Activate a subscriber who followed their confirmation link; None when erased.

    Any status becomes active: the link reached the mailbox, which is the consent it asks for.
    """
    with store.write_transaction() as session:
        sub = session.get(Subscriber, subscriber_id)
        if sub is None:
            return None
        change_status(session, sub.id, ACTIVE, "confirmed", now or utcnow())
        return row_of(sub)


def _signup(
    session: Session, address: str, name: str | None, cats: list[str] | None, now: datetime
) -> Signup:
    sub = session.scalars(
        select(Subscriber).where(Subscriber.email_key == email_key(address))
    ).one_or_none()
    if sub is None:
        sub = new_subscriber(
            address, name=name, categories=cats, status=PENDING, reason="web sign-up", now=now
        )
        session.add(sub)
        session.flush()
        return Signup(row_of(sub), created=True, needs_confirmation=True)
    if sub.status == PENDING:
        # Not confirmed yet, so nobody's settings are overwritten: the latest request wins.
        if name is not None and name != sub.name:
            sub.name, sub.updated_at = name, now
        if cats is not None and cats != list(sub.categories or ()):
            sub.categories, sub.updated_at = cats, now
        session.flush()
    # An active, unsubscribed or bounced subscriber's fields are theirs: a form anyone can post
    # must not change them; only the confirmation link (to their mailbox) changes the status.
    return Signup(row_of(sub), created=False, needs_confirmation=sub.status != ACTIVE)


def request_signup(
    store: Store,
    email: str,
    *,
    name: str | None = None,
    categories: Sequence[str] | None = None,
    now: datetime | None = None,
) -> Signup:
    """Record a sign-up from the web: a new address becomes `pending`, others keep their status.

    Raises InvalidAddressError (bad address or name) or BadInputError (bad category).
    """
    try:
        address = normalise_email(email)
        clean = clean_name(name) if name is not None else None
    except ValueError as exc:
        raise InvalidAddressError(str(exc)) from None
    cats = clean_categories(categories) if categories is not None else None
    when = now or utcnow()
    for attempt in (1, 2):
        try:
            with store.write_transaction() as session:
                return _signup(session, address, clean, cats, when)
        except IntegrityError:
            # PostgreSQL: the same address was inserted meanwhile; the second look finds it.
            if attempt == 2:
                raise
    raise AssertionError("unreachable")  # pragma: no cover


def ping(store: Store) -> None:
    """Raise DatabaseError unless the database answers and has the subscribers table."""
    try:
        with store.session() as session:
            session.execute(select(Subscriber.id).limit(1)).all()
    except SQLAlchemyError as exc:  # a missing table or privilege is not an OperationalError
        raise database_error(store.url, exc) from exc
