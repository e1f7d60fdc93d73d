"""Claims and outcomes: a sender claims batches of due deliveries and records each outcome.

delivery ─► store.claims: each change is a committed row, so a killed sender's run resumes.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, NamedTuple

from sqlalchemy import Connection, bindparam, func, or_, select, update
from sqlalchemy.orm import Session

from digest.store import Store
from digest.store.journal import remove_journals
from digest.store.models import (
    ACTIVE,
    BOUNCED,
    D_FAILED,
    D_PENDING,
    D_SENDING,
    D_SKIPPED,
    deliveries_table,
    runs_table,
    sqlite_stamp,
    subscribers_table,
    utcnow,
    workers_table,
)
from digest.store.recorder import Recorder as Recorder
from digest.store.subscribers import change_status
from digest.store.workers import IN_FLIGHT_MARK, LEASE_TIMEOUT, take_over_dead_claims
from digest.store.write_lock import writing

# last_reply of a delivery whose final dot got no answer (a timeout, a closed socket): it may
# have been delivered; it is sent again, and counted, like one in flight at a crash.
NO_ANSWER_MARK = "no answer after the final dot; sending again"
POSSIBLY_SENT_MARKS = (IN_FLIGHT_MARK, NO_ANSWER_MARK)
RESENDING_MARK = "sent again: may arrive twice"


class Claim(NamedTuple):
    """One delivery claimed by a sender: who gets it and from which segment."""

    delivery_id: int
    subscriber_id: int
    email: str
    name: str
    segment_id: int
    reclaimed: bool  # taken over from a dead sender: it may have gone out already
    categories: tuple[str, ...] = ()  # the subscriber's own, for "why you get this"
    link_key: str = ""  # what the subscriber's unsubscribe link is bound to


@dataclass(frozen=True)
class Outlook:
    """What is left of a run for one sender that found nothing to claim just now."""

    waiting: int  # pending rows this sender may still retry (not given up in this pass)
    next_due: datetime | None  # the earliest next_attempt_at among them
    others_sending: int  # rows in flight with another (live) sender
    # When the other senders' leases run out if they stopped beating now (their claims are then
    # taken over); None when none holds any.
    lease_until: datetime | None = None


# Built once: on the hot path, building and keying a statement per batch costs more than
# SQLite's commit.
_DUE = (
    select(
        deliveries_table.c.id,
        deliveries_table.c.subscriber_id,
        subscribers_table.c.email,
        subscribers_table.c.name,
        subscribers_table.c.status.label("subscriber_status"),
        deliveries_table.c.segment_id,
        deliveries_table.c.last_reply,
        subscribers_table.c.categories,
        subscribers_table.c.link_key,
    )
    .select_from(
        deliveries_table.outerjoin(
            subscribers_table, subscribers_table.c.id == deliveries_table.c.subscriber_id
        )
    )
    .where(
        deliveries_table.c.run_id == bindparam("rid"),
        deliveries_table.c.status == D_PENDING,
        or_(
            deliveries_table.c.next_attempt_at.is_(None),
            deliveries_table.c.next_attempt_at <= bindparam("now"),
        ),
        deliveries_table.c.id.not_in(bindparam("exclude", expanding=True)),
    )
    .order_by(deliveries_table.c.id)
    .limit(bindparam("lim"))
)
# SQLite: the batch taken a row at a time in one executemany, its times as SQLAlchemy's SQLite
# DateTime stores them (an IN list of 128 expanded and compiled per claim cost 4 times more).
_TAKE_SQLITE = (
    f"UPDATE deliveries SET status = '{D_SENDING}', claimed_by = ?, claimed_at = ?, "
    "updated_at = ? WHERE id = ?"
)
# PostgreSQL: a claim is one statement on the sending thread's own autocommit connection (its
# Recorder's: one round trip, one commit; a SELECT ... FOR UPDATE and an UPDATE in a transaction
# on a pooled connection cost twice the time): the due rows locked (SKIP LOCKED: a concurrent
# claim passes them by), taken, and returned with their subscribers; those of subscribers no
# longer active become skipped in the same statement.
_ACTIVE_ROW = f"j.subscriber_status = '{ACTIVE}'"
_CLAIM_POSTGRESQL = f"""
    WITH due AS (
        SELECT id, subscriber_id FROM deliveries
        WHERE run_id = %(rid)s AND status = '{D_PENDING}'
          AND (next_attempt_at IS NULL OR next_attempt_at <= %(now)s)
          AND id <> ALL(%(exclude)s::integer[])
        ORDER BY id LIMIT %(lim)s
        FOR UPDATE SKIP LOCKED
    ), j AS (
        SELECT due.id, s.email, s.name, s.status AS subscriber_status, s.categories, s.link_key
        FROM due LEFT JOIN subscribers AS s ON s.id = due.subscriber_id
    )
    UPDATE deliveries SET
        status = CASE WHEN {_ACTIVE_ROW} THEN '{D_SENDING}' ELSE '{D_SKIPPED}' END,
        claimed_by = CASE WHEN {_ACTIVE_ROW} THEN %(wid)s END,
        claimed_at = CASE WHEN {_ACTIVE_ROW} THEN %(now)s ELSE deliveries.claimed_at END,
        last_reply = CASE WHEN {_ACTIVE_ROW} THEN deliveries.last_reply
                          ELSE 'subscriber is ' || COALESCE(j.subscriber_status, 'erased') END,
        updated_at = %(now)s
    FROM j WHERE deliveries.id = j.id
    RETURNING deliveries.id, deliveries.subscriber_id, j.email, j.name, j.subscriber_status,
        deliveries.segment_id, deliveries.last_reply, j.categories, j.link_key
"""
_SKIP = (
    update(deliveries_table)
    .where(deliveries_table.c.id == bindparam("did"))
    .values(status=D_SKIPPED, claimed_by=None, last_reply=bindparam("reason"))
)


def claim(
    store: Store,
    run_id: int,
    worker_id: str,
    limit: int,
    *,
    recorder: Recorder,
    exclude: Collection[int] = (),
    take_over: bool = True,
) -> list[Claim]:
    """Claim up to `limit` due deliveries for this worker, taking over those of dead senders.

    Deliveries of subscribers who are no longer active (or were erased) become `skipped`.
    take_over=False skips the look for dead senders (a busy sender looks now and then).
    recorder: the sending thread's own connection (PostgreSQL claims on it).
    """
    if store.dialect == "postgresql":
        return _claim_postgresql(store, recorder, run_id, worker_id, limit, exclude, take_over)
    while True:
        now = utcnow()
        with writing(store) as conn:
            applied = take_over_dead_claims(conn, run_id, worker_id, now) if take_over else []
            params = {"rid": run_id, "now": now, "lim": limit, "exclude": list(exclude)}
            rows = conn.execute(_DUE, params).all()
            claims: list[Claim] = []
            skipped: list[dict[str, Any]] = []
            for row in rows:
                status = row[4]  # subscriber_status (None: erased)
                if row[1] is None or status != ACTIVE:
                    skipped.append({"did": row[0], "reason": f"subscriber is {status or 'erased'}"})
                else:
                    claims.append(_claim_of(row))
            if claims:
                stamp = sqlite_stamp(now)
                conn.exec_driver_sql(
                    _TAKE_SQLITE, [(worker_id, stamp, stamp, c.delivery_id) for c in claims]
                )
                again = [c.delivery_id for c in claims if c.reclaimed]
                if again:
                    _count_possible_resends(conn, run_id, again)
            if skipped:
                conn.execute(_SKIP, skipped)
        remove_journals(applied)  # committed: the dead senders' journals are in the database
        take_over = False
        if claims or len(rows) < limit:
            return claims


def _claim_postgresql(
    store: Store,
    recorder: Recorder,
    run_id: int,
    worker_id: str,
    limit: int,
    exclude: Collection[int],
    take_over: bool,
) -> list[Claim]:
    """claim() on PostgreSQL: one autocommit statement a batch (see _CLAIM_POSTGRESQL).

    What follows the claim, each its own commit, stays right if the sender dies in between:
    rows claimed and not yet counted as possible re-sends keep their in-flight mark, so whoever
    takes them over counts them.
    """
    if take_over:
        with writing(store) as conn:
            applied = take_over_dead_claims(conn, run_id, worker_id, utcnow())
        remove_journals(applied)
    while True:
        params = {
            "rid": run_id,
            "now": utcnow(),
            "lim": limit,
            "exclude": list(exclude),
            "wid": worker_id,
        }
        rows = sorted(recorder.fetch(_CLAIM_POSTGRESQL, params), key=lambda row: int(row.id))
        claims = [_claim_of(row) for row in rows if row.subscriber_status == ACTIVE]
        again = [c.delivery_id for c in claims if c.reclaimed]
        if again:
            with writing(store) as conn:
                _count_possible_resends(conn, run_id, again)
        if claims or len(rows) < limit:
            return claims


def _claim_of(row: Any) -> Claim:
    # Unpacked, not read by name: a claim makes 128 of these, and a row's attributes cost.
    delivery_id, subscriber_id, email, name, _status, segment_id, last_reply, categories, key = row
    return Claim(
        delivery_id,
        subscriber_id,
        email,
        name or "",
        segment_id,
        last_reply in POSSIBLY_SENT_MARKS,
        tuple(categories or ()),
        key,
    )


def _count_possible_resends(conn: Connection, run_id: int, delivery_ids: list[int]) -> None:
    """Count on the run (for every process's history) messages that may go out twice.

    The mark goes as it is counted: one that is released unsent is not counted again.
    """
    conn.execute(
        update(deliveries_table)
        .where(deliveries_table.c.id.in_(delivery_ids))
        .values(last_reply=RESENDING_MARK)
    )
    conn.execute(
        update(runs_table)
        .where(runs_table.c.id == run_id)
        .values(possible_resends=runs_table.c.possible_resends + len(delivery_ids))
    )


def release_claims(
    store: Store,
    run_id: int,
    worker_id: str,
    delivery_ids: Collection[int] | None = None,
    *,
    keep: Collection[int] = (),
) -> int:
    """Put this worker's claimed, unsent deliveries back to pending (a stop, an abort).

    `keep`: deliveries whose outcome is unknown (sent, then the database failed): they stay
    claimed, so the next sender takes them over as possibly sent, and counts them.
    """
    stmt = update(deliveries_table).where(
        deliveries_table.c.run_id == run_id,
        deliveries_table.c.status == D_SENDING,
        deliveries_table.c.claimed_by == worker_id,
    )
    if delivery_ids is not None:
        if not delivery_ids:
            return 0
        stmt = stmt.where(deliveries_table.c.id.in_(list(delivery_ids)))
    if keep:
        stmt = stmt.where(deliveries_table.c.id.not_in(list(keep)))
    with writing(store) as conn:
        result = conn.execute(
            stmt.values(status=D_PENDING, claimed_by=None, claimed_at=None, updated_at=utcnow())
        )
        return int(result.rowcount)


def mark_transient(store: Store, delivery_id: int, reply: str, retry_backoff: float) -> int:
    """A 4xx (or a lost connection): back to pending, due after a doubling backoff.

    Returns the delivery's attempt count after this one.
    """
    now = utcnow()
    this_delivery = deliveries_table.c.id == delivery_id
    with writing(store) as conn:
        attempts = int(
            conn.execute(
                update(deliveries_table)
                .where(this_delivery)
                .values(attempts=deliveries_table.c.attempts + 1)
                .returning(deliveries_table.c.attempts)
            ).scalar_one()
        )
        delay = retry_backoff * 2 ** max(attempts - 1, 0)
        conn.execute(
            update(deliveries_table)
            .where(this_delivery)
            .values(
                status=D_PENDING,
                next_attempt_at=now + timedelta(seconds=delay),
                last_reply=reply,
                claimed_by=None,
                claimed_at=None,
                updated_at=now,
            )
        )
        return attempts


def mark_failed(store: Store, delivery_id: int, subscriber_id: int | None, reply: str) -> None:
    """A 5xx refusal: the delivery failed and the subscriber is bounced, in one transaction."""
    now = utcnow()
    with writing(store) as conn:
        conn.execute(
            update(deliveries_table)
            .where(deliveries_table.c.id == delivery_id)
            .values(
                status=D_FAILED,
                attempts=deliveries_table.c.attempts + 1,
                last_reply=reply,
                claimed_by=None,
                updated_at=now,
            )
        )
        if subscriber_id is not None:
            change_status(conn, subscriber_id, BOUNCED, reply, now, only_from=(ACTIVE,))


def skip_delivery(store: Store, delivery_id: int, reason: str) -> None:
    """The subscriber left just before their message: skip it (it was claimed by us)."""
    with writing(store) as conn:
        conn.execute(_SKIP.values(updated_at=utcnow()), {"did": delivery_id, "reason": reason})


def skip_segment(store: Store, segment_id: int, reason: str) -> int:
    """Skip every open delivery of a segment (its posts are gone); returns how many."""
    with writing(store) as conn:
        result = conn.execute(
            update(deliveries_table)
            .where(
                deliveries_table.c.segment_id == segment_id,
                deliveries_table.c.status.in_((D_PENDING, D_SENDING)),
            )
            .values(status=D_SKIPPED, claimed_by=None, last_reply=reason, updated_at=utcnow())
        )
        return int(result.rowcount)


def outlook(
    session: Session, run_id: int, worker_id: str, exclude: Collection[int] = ()
) -> Outlook:
    """What is left for a sender with nothing to claim: wait for retries, others, or stop."""
    pending = select(
        func.count().label("waiting"), func.min(deliveries_table.c.next_attempt_at).label("due")
    ).where(deliveries_table.c.run_id == run_id, deliveries_table.c.status == D_PENDING)
    if exclude:
        pending = pending.where(deliveries_table.c.id.not_in(list(exclude)))
    left = session.execute(pending).one()
    others = session.execute(
        select(func.count()).where(
            deliveries_table.c.run_id == run_id,
            deliveries_table.c.status == D_SENDING,
            deliveries_table.c.claimed_by != worker_id,
        )
    ).scalar_one()
    lease_until = None
    if others:
        claimers = select(deliveries_table.c.claimed_by).where(
            deliveries_table.c.run_id == run_id,
            deliveries_table.c.status == D_SENDING,
            deliveries_table.c.claimed_by != worker_id,
        )
        beat = session.execute(
            select(func.max(workers_table.c.heartbeat_at)).where(workers_table.c.id.in_(claimers))
        ).scalar()
        lease_until = _aware(beat or utcnow()) + LEASE_TIMEOUT
    next_due = _aware(left.due) if left.due is not None else None
    return Outlook(int(left.waiting), next_due, int(others), lease_until)


def _aware(when: datetime) -> datetime:
    return when.replace(tzinfo=utcnow().tzinfo) if when.tzinfo is None else when
