"""Sign-ups and one-click unsubscribes by link: the store calls behind `digest serve`.

web ─► store: each status change here is one write transaction that reads and decides under lock.
"""

from __future__ import annotations

import hmac
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import Enum

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlalchemy.orm import Session

from digest.addresses import clean_name, email_key, normalise_email
from digest.errors import InvalidAddressError
from digest.store import Store, confirmations
from digest.store.db_errors import database_error
from digest.store.models import (
    ACTIVE,
    PENDING,
    UNSUBSCRIBED,
    SignupAttempt,
    SignupRequest,
    Subscriber,
    utcnow,
)
from digest.store.subscribers import (
    WEB_SOURCE,
    Consent,
    SubscriberRow,
    change_status,
    new_subscriber,
    row_of,
)
from digest.store.subscriptions import clean_categories, clean_digests

log = logging.getLogger(__name__)

# Statuses a one-click unsubscribe turns into `unsubscribed`; bounced stays bounced.
UNSUBSCRIBABLE = (PENDING, ACTIVE)


class SignupOutcome(Enum):
    """What a sign-up request did. Never shown to the requester: every answer is the same."""

    QUEUED = "queued"  # a confirmation mail is queued
    ACTIVE = "active"  # already subscribed: nothing to do
    RESEND_LIMITED = "resend-limited"  # a confirmation went out within signup_resend_after
    CLIENT_LIMITED = "client-limited"  # the client's address is over its hourly limit


@dataclass(frozen=True)
class SignupLimits:
    """web.signup_resend_after and web.signups_per_ip_per_hour."""

    resend_after: timedelta
    per_client_per_hour: int


class StaleLinkError(Exception):
    """An unsubscribe link made for an earlier subscription of the address (or of its id)."""


def get_subscriber(store: Store, subscriber_id: int) -> SubscriberRow | None:
    """The subscriber with this id, or None (erased)."""
    with store.session() as session:
        sub = session.get(Subscriber, subscriber_id)
        return row_of(sub) if sub is not None else None


def link_holds(row: SubscriberRow, link_key: str | None) -> bool:
    """True when an unsubscribe link with this key (None: an old id-only link) is still theirs."""
    if link_key is None:
        return row.legacy_links
    return hmac.compare_digest(link_key.encode(), row.link_key.encode())


def subscriber_for_link(
    store: Store, subscriber_id: int, link_key: str | None
) -> SubscriberRow | None:
    """The subscriber an unsubscribe link names; None when erased, StaleLinkError when the
    link was made for an earlier subscription."""
    row = get_subscriber(store, subscriber_id)
    if row is not None and not link_holds(row, link_key):
        raise StaleLinkError(subscriber_id)
    return row


def unsubscribe_id(
    store: Store,
    subscriber_id: int,
    link_key: str | None,
    *,
    reason: str,
    now: datetime | None = None,
) -> SubscriberRow | None:
    """Unsubscribe by link (idempotent; bounced stays bounced); None when erased,
    StaleLinkError when the link was made for an earlier subscription."""
    with store.write_transaction() as session:
        sub = session.get(Subscriber, subscriber_id)
        if sub is None:
            return None
        if not link_holds(row_of(sub), link_key):
            raise StaleLinkError(subscriber_id)
        change_status(
            session, sub.id, UNSUBSCRIBED, reason, now or utcnow(), only_from=UNSUBSCRIBABLE
        )
        session.refresh(sub)
        return row_of(sub)


def _over_client_limit(
    session: Session, client_key: str, limits: SignupLimits, now: datetime
) -> bool:
    recent = session.scalar(
        select(func.count(SignupAttempt.id)).where(
            SignupAttempt.client_key == client_key,
            SignupAttempt.created_at > now - timedelta(hours=1),
        )
    )
    if (recent or 0) >= limits.per_client_per_hour:
        return True
    session.add(SignupAttempt(client_key=client_key, created_at=now))
    return False


def _signup(
    session: Session,
    address: str,
    name: str | None,
    cats: list[str] | None,
    digests: list[str] | None,
    client_key: str,
    limits: SignupLimits,
    now: datetime,
    timezone: str | None = None,
) -> SignupOutcome:
    if _over_client_limit(session, client_key, limits, now):
        return SignupOutcome.CLIENT_LIMITED
    sub = session.scalars(
        select(Subscriber).where(Subscriber.email_key == email_key(address))
    ).one_or_none()
    if sub is None:
        sub = new_subscriber(
            address,
            name=name,
            categories=cats,
            digests=digests,
            status=PENDING,
            reason="web sign-up",
            now=now,
            consent=Consent(requested_at=now, source=WEB_SOURCE, ip=client_key),
        )
        sub.timezone = timezone
        session.add(sub)
        session.flush()
    elif sub.status == ACTIVE:
        return SignupOutcome.ACTIVE
    else:
        # Pending, unsubscribed or bounced: the form (anyone can post it) changes nothing of
        # the record; only a confirmation link, which reaches the mailbox, does, and it saves
        # the choices of its own request (never those of another, earlier or later).
        # A link that still works went out moments ago: not another one so soon (the answer
        # page says so). A spent or voided one (they confirmed, then left) does not hold back.
        last = confirmations.last_usable_issued_at(session, sub)
        if last is not None and last > now - limits.resend_after:
            log.info(
                "subscriber %d signed up again; the confirmation link sent %s ago still works, "
                "none sent again",
                sub.id,
                str(now - last).split(".")[0],
            )
            return SignupOutcome.RESEND_LIMITED
    choices = confirmations.Choices(
        name=name or "",
        categories=tuple(cats or ()),
        digests=tuple(digests) if digests is not None else None,
        timezone=timezone,
    )
    confirmations.issue(session, sub, now, client_key=client_key, choices=choices)
    return SignupOutcome.QUEUED


def queue_signup(
    store: Store,
    email: str,
    *,
    client_key: str,
    name: str | None = None,
    categories: Sequence[str] | None = None,
    digests: Sequence[str] | None = None,
    now: datetime | None = None,
    timezone: str | None = None,
) -> None:
    """Record a sign-up request as received (one insert, whatever the address); the mailer
    decides what it does (process_signups). `digests` None: every digest.

    Raises InvalidAddressError (bad address or name) or BadInputError (bad category).
    """
    try:
        address = normalise_email(email)
        clean = clean_name(name) if name is not None else None
    except ValueError as exc:
        raise InvalidAddressError(str(exc)) from None
    cats = clean_categories(categories) if categories is not None else None
    with store.write_transaction() as session:
        session.add(
            SignupRequest(
                email=address,
                name=clean,
                categories=cats,
                digests=clean_digests(digests) if digests is not None else None,
                client_key=client_key,
                created_at=now or utcnow(),
                timezone=timezone,
            )
        )


def process_signups(store: Store, limits: SignupLimits, *, batch: int = 50) -> list[SignupOutcome]:
    """Decide the oldest queued sign-up requests (each as of when it came): a new address
    becomes `pending` with a confirmation queued; others keep their status and fields."""
    for attempt in (1, 2):
        try:
            with store.write_transaction() as session:
                query = select(SignupRequest).order_by(SignupRequest.id).limit(batch)
                if store.dialect == "postgresql":
                    query = query.with_for_update(skip_locked=True)
                outcomes = []
                for request in session.scalars(query).all():
                    outcomes.append(
                        _signup(
                            session,
                            request.email,
                            request.name,
                            request.categories,
                            request.digests,
                            request.client_key,
                            limits,
                            request.created_at,
                            request.timezone,
                        )
                    )
                    session.delete(request)
                    session.flush()
                return outcomes
        except IntegrityError:
            # PostgreSQL: another server inserted the same address meanwhile; look again.
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
