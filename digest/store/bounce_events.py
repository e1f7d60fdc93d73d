"""Bounce and complaint events: which delivery a report is about, what it did, what was seen before.

bounces.policy ─► store (here): the only SQL of asynchronous bounces; history reads the counts.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, TypeAlias, TypeVar

from sqlalchemy import distinct, func, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from digest.addresses import email_key
from digest.store.models import (
    D_FAILED,
    D_SENT,
    EVENT_COMPLAINT,
    EVENT_HARD,
    EVENT_SOFT,
    RUN_FINISHED,
    BounceEvent,
    Delivery,
    ProcessedReport,
    Run,
    Subscriber,
)

if TYPE_CHECKING:
    from digest.store import Store

# The open transaction bounces.policy's steps run in: it hands it back to the functions here
# and does no SQL of its own.
Transaction: TypeAlias = Session
T = TypeVar("T")


@dataclass(frozen=True)
class Target:
    """Who a report is about: a subscriber and, when known, the delivery (and so the run)."""

    subscriber_id: int
    run_id: int | None = None
    delivery_id: int | None = None


@dataclass(frozen=True)
class RunBounces:
    """What came back about one run after it was sent."""

    bounced_later: int  # deliveries with a hard bounce report
    complaints: int  # deliveries with a complaint


def act_once(
    store: Store,
    key: str,
    now: datetime,
    act: Callable[[Transaction], T],
    *,
    nonces: Iterable[str] = (),
) -> T | None:
    """`act` in one write transaction that records the report `key` (and `nonces`, a relay's
    one-time tokens) as processed; None, and nothing changed, when the key or a nonce was
    processed before, by an earlier call or by another process committing first."""
    try:
        with store.write_transaction() as session:
            for nonce in nonces:
                mark_processed(session, nonce, now)
            if is_processed(session, key):
                return None
            mark_processed(session, key, now)
            return act(session)
    except IntegrityError:
        # Another process recorded the same report between our check and our commit.
        return None


def is_processed(session: Session, key: str) -> bool:
    """Whether a report with this key was acted on already."""
    return session.get(ProcessedReport, key) is not None


def mark_processed(session: Session, key: str, now: datetime) -> None:
    """Remember a report's key (the primary key makes a racing second copy fail to commit)."""
    session.execute(insert(ProcessedReport).values(key=key, processed_at=now))


def delivery_target(session: Session, run_id: int, subscriber_id: int) -> Target | None:
    """The delivery of run `run_id` to a subscriber, if the subscriber was in that run."""
    delivery_id = session.scalar(
        select(Delivery.id).where(
            Delivery.run_id == run_id, Delivery.subscriber_id == subscriber_id
        )
    )
    return None if delivery_id is None else Target(subscriber_id, run_id, delivery_id)


def message_id_target(session: Session, message_id: str) -> Target | None:
    """The delivery that sent the message with this Message-ID."""
    bracketed = "<" + message_id.strip().strip("<>") + ">"
    row = session.execute(
        select(Delivery.id, Delivery.run_id, Delivery.subscriber_id)
        .where(Delivery.message_id == bracketed)
        .limit(1)
    ).first()
    if row is None or row.subscriber_id is None:
        return None
    return Target(row.subscriber_id, row.run_id, row.id)


def recent_delivery_target(session: Session, address: str, since: datetime) -> Target | None:
    """The newest delivery sent to this address from `since` on; None when there is none."""
    row = session.execute(
        select(Delivery.id, Delivery.run_id, Delivery.subscriber_id)
        .join(Subscriber, Subscriber.id == Delivery.subscriber_id)
        .where(
            Subscriber.email_key == email_key(address.strip()),
            Delivery.sent_at.is_not(None),
            Delivery.sent_at >= since,
        )
        .order_by(Delivery.sent_at.desc(), Delivery.id.desc())
        .limit(1)
    ).first()
    if row is None:
        return None
    return Target(row.subscriber_id, row.run_id, row.id)


def record_event(
    session: Session,
    target: Target,
    *,
    kind: str,
    status_code: str | None,
    reason: str,
    origin: str,
    now: datetime,
) -> None:
    """Store one bounce or complaint about a subscriber."""
    session.execute(
        insert(BounceEvent).values(
            kind=kind,
            subscriber_id=target.subscriber_id,
            run_id=target.run_id,
            delivery_id=target.delivery_id,
            status_code=status_code,
            reason=reason or None,
            origin=origin,
            received_at=now,
        )
    )


def soft_bounces_since(session: Session, subscriber_id: int, since: datetime) -> int:
    """How many soft bounces a subscriber had from `since` on."""
    return (
        session.scalar(
            select(func.count())
            .select_from(BounceEvent)
            .where(
                BounceEvent.subscriber_id == subscriber_id,
                BounceEvent.kind == EVENT_SOFT,
                BounceEvent.received_at >= since,
            )
        )
        or 0
    )


def change_status(
    session: Session,
    subscriber_id: int,
    status: str,
    reason: str,
    now: datetime,
    *,
    only_from: Iterable[str],
) -> bool:
    """Set a subscriber's status when it is one of `only_from`; whether it changed."""
    result = session.execute(
        update(Subscriber)
        .where(Subscriber.id == subscriber_id, Subscriber.status.in_(tuple(only_from)))
        .values(
            status=status,
            status_reason=reason,
            status_changed_at=now,
            updated_at=now,
            status_serial=Subscriber.status_serial + 1,
        )
    )
    return bool(getattr(result, "rowcount", 0))


def run_bounces(session: Session, run_ids: Iterable[int]) -> dict[int, RunBounces]:
    """bounced_later and complaints for each run (runs with neither are left out)."""
    ids = list(run_ids)
    if not ids:
        return {}
    counts: dict[int, dict[str, int]] = {}
    rows = session.execute(
        select(BounceEvent.run_id, BounceEvent.kind, func.count(distinct(BounceEvent.delivery_id)))
        .where(
            BounceEvent.run_id.in_(ids),
            BounceEvent.kind.in_((EVENT_HARD, EVENT_COMPLAINT)),
            BounceEvent.delivery_id.is_not(None),
        )
        .group_by(BounceEvent.run_id, BounceEvent.kind)
    )
    for run_id, kind, count in rows:
        if run_id is not None:
            counts.setdefault(run_id, {})[kind] = count
    return {
        run_id: RunBounces(by_kind.get(EVENT_HARD, 0), by_kind.get(EVENT_COMPLAINT, 0))
        for run_id, by_kind in counts.items()
    }


def forget_subscriber(session: Session, subscriber_id: int) -> None:
    """Before a subscriber is erased: unlink their events and drop the diagnostic texts,
    which quote the address; the run's counts stay."""
    session.execute(
        update(BounceEvent)
        .where(BounceEvent.subscriber_id == subscriber_id)
        .values(subscriber_id=None, reason=None)
    )


@dataclass(frozen=True)
class RunOutcome:
    """The last finished run of a digest: what went out and what came back."""

    run_id: int
    sent: int  # accepted by the server
    refused: int  # refused at send time (5xx) or given up
    bounced_later: int
    complaints: int


def last_run_outcome(session: Session, digest: str) -> RunOutcome | None:
    """The newest finished run of `digest` with its counts, or None before the first."""
    run_id = session.scalar(
        select(Run.id)
        .where(Run.digest == digest, Run.status == RUN_FINISHED)
        .order_by(Run.id.desc())
        .limit(1)
    )
    if run_id is None:
        return None
    counts = dict(
        session.execute(
            select(Delivery.status, func.count())
            .where(Delivery.run_id == run_id)
            .group_by(Delivery.status)
        ).all()
    )
    later = run_bounces(session, [run_id]).get(run_id, RunBounces(0, 0))
    return RunOutcome(
        run_id=run_id,
        sent=int(counts.get(D_SENT, 0)),
        refused=int(counts.get(D_FAILED, 0)),
        bounced_later=later.bounced_later,
        complaints=later.complaints,
    )
