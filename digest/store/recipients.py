"""Who a run of a digest mails: the one receives_digest condition and the snapshot's rows.

store is the only home of SQL: runs takes a run's recipients (its snapshot) with receives_digest.
"""

from __future__ import annotations

from datetime import datetime
from typing import NamedTuple

from sqlalchemy import ColumnElement, and_, exists, or_, select
from sqlalchemy.orm import Session

from digest.store.models import ACTIVE, Subscriber, Subscription


class ActiveSubscriber(NamedTuple):
    """An active subscriber as a run's snapshot takes them."""

    id: int
    email: str
    name: str
    categories: list[str]
    paused_until: datetime | None


def receives_digest(digest: str, now: datetime) -> ColumnElement[bool]:
    """The one condition on `subscribers` rows that a run of `digest` at `now` mails.

    Active, on the digest (all_digests, or a subscriptions row for it), and not paused.
    """
    on_digest = exists().where(
        Subscription.subscriber_id == Subscriber.id, Subscription.digest == digest
    )
    return and_(
        Subscriber.status == ACTIVE,
        or_(Subscriber.all_digests.is_(True), on_digest),
        or_(Subscriber.paused_until.is_(None), Subscriber.paused_until <= now),
    )


def active_subscribers(session: Session, digest: str, now: datetime) -> list[ActiveSubscriber]:
    """Every subscriber a run of `digest` at `now` mails (receives_digest), for its snapshot."""
    rows = session.execute(
        select(
            Subscriber.id,
            Subscriber.email,
            Subscriber.name,
            Subscriber.categories,
            Subscriber.paused_until,
        )
        .where(receives_digest(digest, now))
        .order_by(Subscriber.id)
    )
    return [
        ActiveSubscriber(row.id, row.email, row.name, list(row.categories or ()), row.paused_until)
        for row in rows
    ]
