"""Confirmation links of web sign-ups: issued once each, used once, and the queue of their mails.

store, behind web: POST /subscribe issues one here; the mailer of `digest serve` sends it later.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import Enum
from typing import Any, NamedTuple

from sqlalchemy import and_, delete, func, or_, select, update
from sqlalchemy.orm import Session

from digest.store import Store
from digest.store.models import (
    ACTIVE,
    C_FAILED,
    C_QUEUED,
    C_SENT,
    Confirmation,
    SignupAttempt,
    Subscriber,
    utcnow,
)
from digest.store.subscribers import (
    WEB_SOURCE,
    Consent,
    SubscriberRow,
    change_status,
    renew_link_key,
    row_of,
)
from digest.store.subscriptions import set_digests

# How long a claimed mail is the claimer's alone: after that (a killed server) another takes it.
CLAIM_LEASE = timedelta(minutes=5)


class LinkState(Enum):
    """What a confirmation link can do now."""

    CONFIRMABLE = "confirmable"  # issued after the subscriber's last status change, unused
    ACTIVE = "active"  # the subscriber is active already: nothing to do
    VOID = "void"  # used, replaced by a status change since it was issued, or unknown nonce
    EXPIRED = "expired"


@dataclass(frozen=True)
class Choices:
    """What one sign-up request asked for; its link saves exactly these when confirmed."""

    name: str = ""
    categories: tuple[str, ...] = ()  # none: every post
    digests: tuple[str, ...] | None = None  # None: every digest, future ones too
    timezone: str | None = None  # the browser's zone; None: keep the subscriber's

    def as_json(self) -> dict[str, Any]:
        digests = list(self.digests) if self.digests is not None else None
        return {
            "name": self.name,
            "categories": list(self.categories),
            "digests": digests,
            "timezone": self.timezone,
        }

    @classmethod
    def of(cls, data: dict[str, Any] | None) -> Choices | None:
        if not isinstance(data, dict):
            return None
        digests = data.get("digests")
        return cls(
            name=str(data.get("name") or ""),
            categories=tuple(str(c) for c in data.get("categories") or ()),
            digests=tuple(str(d) for d in digests) if isinstance(digests, list) else None,
            timezone=str(data["timezone"]) if data.get("timezone") else None,
        )


@dataclass(frozen=True)
class LinkCheck:
    """A confirmation link looked up: the subscriber (None when erased), what it can do, and
    the choices it saves (None: a link from before choices were kept; it saves nothing)."""

    subscriber: SubscriberRow | None
    state: LinkState
    choices: Choices | None = None


class QueuedMail(NamedTuple):
    """A confirmation mail to send now."""

    confirmation_id: int
    subscriber_id: int
    email: str
    nonce: str
    attempts: int
    created_at: datetime


def issue(
    session: Session,
    sub: Subscriber,
    now: datetime,
    *,
    client_key: str | None = None,
    choices: Choices | None = None,
) -> Confirmation:
    """A new confirmation (its own random nonce) whose mail is queued for the mailer;
    `client_key`: the sign-up's client (a keyed hash), kept for the consent record; `choices`:
    what its request asked for, saved when this link is confirmed."""
    confirmation = Confirmation(
        subscriber_id=sub.id,
        client_key=client_key,
        status_serial=sub.status_serial or 0,
        choices=choices.as_json() if choices is not None else None,
        nonce=secrets.token_urlsafe(16),
        created_at=now,
        status=C_QUEUED,
        attempts=0,
        next_attempt_at=now,
    )
    session.add(confirmation)
    return confirmation


def last_usable_issued_at(session: Session, sub: Subscriber) -> datetime | None:
    """When the newest confirmation of a subscriber that still works was issued (None: none):
    one used already, or voided by a status change since (an unsubscribe), does not count."""
    query = select(func.max(Confirmation.created_at)).where(
        Confirmation.subscriber_id == sub.id, Confirmation.used_at.is_(None)
    )
    serial = sub.status_serial or 0
    query = query.where(
        or_(
            Confirmation.status_serial == serial,
            and_(
                Confirmation.status_serial.is_(None),
                Confirmation.created_at >= sub.status_changed_at,
            ),
        )
    )
    # max() keeps the column's type, so the time comes back aware (UTC) on both databases.
    newest: datetime | None = session.scalar(query)
    return newest


def _state(
    sub: Subscriber, confirmation: Confirmation | None, now: datetime, max_age: timedelta
) -> LinkState:
    if sub.status == ACTIVE:
        return LinkState.ACTIVE
    if confirmation is None or confirmation.used_at is not None:
        return LinkState.VOID
    # A status change after the link was issued (an unsubscribe, a bounce) voids it for good:
    # counted, so that no host's clock decides (a web host running fast would keep it alive).
    if confirmation.status_serial is not None:
        if confirmation.status_serial != (sub.status_serial or 0):
            return LinkState.VOID
    elif confirmation.created_at < sub.status_changed_at:
        return LinkState.VOID  # a link issued before the counter existed
    if confirmation.created_at + max_age < now:
        return LinkState.EXPIRED
    return LinkState.CONFIRMABLE


def _look_up(
    session: Session, subscriber_id: int, nonce: str, *, lock: bool
) -> tuple[Subscriber | None, Confirmation | None]:
    query = select(Subscriber).where(Subscriber.id == subscriber_id)
    sub = session.scalars(query.with_for_update() if lock else query).one_or_none()
    if sub is None:
        return None, None
    confirmation = session.scalars(
        select(Confirmation).where(
            Confirmation.nonce == nonce, Confirmation.subscriber_id == subscriber_id
        )
    ).one_or_none()
    return sub, confirmation


def check_link(
    store: Store, subscriber_id: int, nonce: str, *, max_age: timedelta, now: datetime | None = None
) -> LinkCheck:
    """What a confirmation link would do (GET shows this; it changes nothing)."""
    with store.session() as session:
        sub, confirmation = _look_up(session, subscriber_id, nonce, lock=False)
        if sub is None:
            return LinkCheck(None, LinkState.VOID)
        state = _state(sub, confirmation, now or utcnow(), max_age)
        return LinkCheck(row_of(sub), state, _choices(confirmation))


def confirm_link(
    store: Store, subscriber_id: int, nonce: str, *, max_age: timedelta, now: datetime | None = None
) -> LinkCheck:
    """Use a confirmation link: a confirmable one activates the subscriber (state CONFIRMABLE
    in the answer means "was confirmable, is now used"). Anything else changes nothing."""
    when = now or utcnow()
    with store.write_transaction() as session:
        sub, confirmation = _look_up(session, subscriber_id, nonce, lock=True)
        if sub is None:
            return LinkCheck(None, LinkState.VOID)
        state = _state(sub, confirmation, when, max_age)
        if state is LinkState.CONFIRMABLE and confirmation is not None:
            confirmation.used_at = when
            # The evidence: the request this very link answered, and its confirmation now.
            Consent(
                requested_at=confirmation.created_at,
                confirmed_at=when,
                source=WEB_SOURCE,
                ip=confirmation.client_key,
            ).write_to(sub)
            choices = _choices(confirmation)
            if choices is not None:
                sub.name = choices.name
                sub.categories = list(choices.categories)
                set_digests(sub, list(choices.digests) if choices.digests is not None else None)
                if choices.timezone:
                    sub.timezone = choices.timezone
            renew_link_key(sub)
            session.flush()
            change_status(session, sub.id, ACTIVE, "confirmed", when)
            session.refresh(sub)
        return LinkCheck(row_of(sub), state, _choices(confirmation))


def _choices(confirmation: Confirmation | None) -> Choices | None:
    return Choices.of(confirmation.choices) if confirmation is not None else None


def claim_due(store: Store, *, limit: int = 20, now: datetime | None = None) -> list[QueuedMail]:
    """Queued mails that are due, claimed for CLAIM_LEASE (so two servers don't both send)."""
    when = now or utcnow()
    with store.write_transaction() as session:
        query = (
            select(Confirmation.id)
            .where(
                Confirmation.status == C_QUEUED,
                Confirmation.next_attempt_at <= when,
                or_(Confirmation.claimed_until.is_(None), Confirmation.claimed_until < when),
            )
            .order_by(Confirmation.next_attempt_at, Confirmation.id)
            .limit(limit)
        )
        if store.dialect == "postgresql":
            query = query.with_for_update(skip_locked=True)
        ids = list(session.scalars(query))
        if not ids:
            return []
        session.execute(
            update(Confirmation)
            .where(Confirmation.id.in_(ids))
            .values(claimed_until=when + CLAIM_LEASE)
        )
        rows = session.execute(
            select(
                Confirmation.id,
                Confirmation.subscriber_id,
                Subscriber.email,
                Confirmation.nonce,
                Confirmation.attempts,
                Confirmation.created_at,
            )
            .join(Subscriber, Subscriber.id == Confirmation.subscriber_id)
            .where(Confirmation.id.in_(ids))
            .order_by(Confirmation.next_attempt_at, Confirmation.id)
        )
        return [QueuedMail(*row) for row in rows]


def mark_sent(store: Store, confirmation_id: int, *, now: datetime | None = None) -> None:
    """The relay took the mail."""
    _finish(store, confirmation_id, C_SENT, None, now or utcnow())


def mark_failed(
    store: Store, confirmation_id: int, error: str, *, now: datetime | None = None
) -> None:
    """Given up: refused for good (5xx), or the link expired before any relay took it."""
    _finish(store, confirmation_id, C_FAILED, error, now or utcnow())


def _finish(
    store: Store, confirmation_id: int, status: str, error: str | None, now: datetime
) -> None:
    with store.write_transaction() as session:
        session.execute(
            update(Confirmation)
            .where(Confirmation.id == confirmation_id)
            .values(
                status=status,
                last_error=error,
                claimed_until=None,
                sent_at=now if status == C_SENT else None,
            )
        )


def mark_retry(store: Store, confirmation_id: int, error: str, *, at: datetime) -> None:
    """Not sent this time (relay down, 4xx): queued again for `at` (if it still is queued)."""
    with store.write_transaction() as session:
        session.execute(
            update(Confirmation)
            .where(Confirmation.id == confirmation_id, Confirmation.status == C_QUEUED)
            .values(
                attempts=Confirmation.attempts + 1,
                last_error=error,
                next_attempt_at=at,
                claimed_until=None,
            )
        )


def release(store: Store, confirmation_ids: list[int]) -> None:
    """Give claimed mails back untried (the server is stopping): due again at once."""
    with store.write_transaction() as session:
        session.execute(
            update(Confirmation)
            .where(Confirmation.id.in_(confirmation_ids), Confirmation.status == C_QUEUED)
            .values(claimed_until=None)
        )


def prune(store: Store, *, max_age: timedelta, now: datetime | None = None) -> int:
    """Forget what no limit or link needs any more: attempts over an hour old, confirmations
    past their links' life. The number of rows removed."""
    when = now or utcnow()
    with store.write_transaction() as session:
        attempts = session.execute(
            delete(SignupAttempt).where(SignupAttempt.created_at < when - timedelta(hours=1))
        )
        confirmations = session.execute(
            delete(Confirmation).where(
                and_(
                    Confirmation.created_at < when - max_age,
                    Confirmation.status != C_QUEUED,
                )
            )
        )
        return int(attempts.rowcount or 0) + int(confirmations.rowcount or 0)  # type: ignore[attr-defined]
