"""Runs of a digest: creating one with its segments and deliveries, finishing it, its history.

delivery ─► store.runs: a run and every delivery it will make are written in one transaction.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, NamedTuple

from sqlalchemy import (
    ColumnElement,
    Text,
    and_,
    cast,
    func,
    insert,
    literal,
    or_,
    select,
    true,
    update,
)
from sqlalchemy.orm import Session

from digest.store import Store
from digest.store.bounce_events import run_bounces
from digest.store.models import (
    D_FAILED,
    D_PENDING,
    D_SENDING,
    D_SENT,
    D_SKIPPED,
    RUN_FINISHED,
    RUN_SENDING,
    DigestState,
    Run,
    Segment,
    SentPost,
    deliveries_table,
    runs_table,
    subscribers_table,
    utcnow,
)
from digest.store.recipients import receives_digest
from digest.store.write_lock import writing


class RunSegment(NamedTuple):
    """One segment of a run: its id and the ids of the posts its subscribers get."""

    id: int
    post_ids: list[str]


@dataclass(frozen=True)
class RunSummary:
    """One run as `digest history` shows it."""

    id: int
    digest: str
    as_of: datetime
    started_at: datetime
    finished_at: datetime | None
    status: str
    trigger: str
    posts: int
    sent: int
    failed: int
    pending: int  # pending + in flight
    skipped: int
    bounced_later: int = 0  # sent, then a hard bounce came back (DSN, relay webhook)
    complaints: int = 0  # sent, then the recipient reported it as spam
    possible_resends: int = 0  # over every process that worked on the run
    edition: str | None = None  # deliver: local_time: the edition's wall time
    relays: dict[str, int] = field(default_factory=dict)  # relay name -> messages it took

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "digest": self.digest,
            "as_of": self.as_of.isoformat(),
            "started_at": self.started_at.isoformat(),
            "finished_at": self.finished_at.isoformat() if self.finished_at else None,
            "status": self.status,
            "trigger": self.trigger,
            "posts": self.posts,
            "sent": self.sent,
            "failed": self.failed,
            "pending": self.pending,
            "skipped": self.skipped,
            "bounced_later": self.bounced_later,
            "complaints": self.complaints,
            "possible_resends": self.possible_resends,
            "edition": self.edition,
            "relays": dict(self.relays),
        }


def unfinished_runs(session: Session, digest: str) -> list[Run]:
    """Runs of `digest` that still have deliveries to make, oldest first."""
    stmt = select(Run).where(Run.digest == digest, Run.status == RUN_SENDING).order_by(Run.id)
    return list(session.scalars(stmt))


def get_run(session: Session, run_id: int) -> Run | None:
    """The run with this id, or None."""
    return session.get(Run, run_id)


def run_segments(session: Session, run_id: int) -> list[RunSegment]:
    """(segment id, post ids) of a run."""
    stmt = select(Segment.id, Segment.post_ids).where(Segment.run_id == run_id)
    return [
        RunSegment(int(segment.id), list(segment.post_ids))
        for segment in session.execute(stmt.order_by(Segment.id))
    ]


def sent_post_ids(session: Session, digest: str) -> set[str]:
    """Ids of posts an earlier run of `digest` included (never new again)."""
    return set(session.scalars(select(SentPost.post_id).where(SentPost.digest == digest)))


def _lock_digest(session: Session, store: Store, digest: str) -> None:
    """Serialise run creation per digest (SQLite: BEGIN IMMEDIATE already holds the lock)."""
    if store.dialect != "postgresql":
        return
    from sqlalchemy.dialects.postgresql import insert as pg_insert  # PostgreSQL's dialect only

    session.execute(
        pg_insert(DigestState)
        .values(digest=digest, updated_at=utcnow())
        .on_conflict_do_nothing(index_elements=["digest"])
    )
    session.execute(
        select(DigestState.digest).where(DigestState.digest == digest).with_for_update()
    )


class CategoryGroup(NamedTuple):
    """Recipients of a run who chose the same categories (and came back from a pause at the
    same time): the key that finds them in SQL, and how many they are."""

    key: str  # their categories as the database spells the JSON (the GROUP BY key)
    categories: list[str]
    not_before: datetime | None  # back from a pause: no post dated before this
    subscribers: int


def _categories_key() -> ColumnElement[str]:
    return func.coalesce(cast(subscribers_table.c.categories, Text), "[]")


def category_groups(
    session: Session, digest: str, now: datetime, *, among: ColumnElement[bool] | None = None
) -> list[CategoryGroup]:
    """A run's would-be recipients (those of them `among` picks, if given) grouped by their
    choice: one row per distinct choice.

    Who a run goes to is said once, by store.recipients.receives_digest.
    """
    key = _categories_key()
    paused = subscribers_table.c.paused_until
    stmt = (
        select(key.label("key"), paused.label("paused"), func.count().label("n"))
        .where(receives_digest(digest, now), true() if among is None else among)
        .group_by(key, paused)
        .order_by(func.min(subscribers_table.c.id))
    )
    groups = []
    for row in session.execute(stmt):
        categories = json.loads(row.key) if row.key else []
        not_before = row.paused
        if not_before is not None and not_before.tzinfo is None:
            not_before = not_before.replace(tzinfo=UTC)
        groups.append(CategoryGroup(str(row.key), list(categories or ()), not_before, int(row.n)))
    return groups


# The share (segment key: post ids, newest first) a choice of categories gets, without posts
# dated before not_before; None: nothing.
ShareOf = Callable[[list[str], datetime | None], tuple[str, ...] | None]


def segment_groups(
    groups: Sequence[CategoryGroup], share_of: ShareOf
) -> dict[tuple[str, ...], list[CategoryGroup]]:
    """Category groups gathered by the share of the posts they get; empty shares left out."""
    segments: dict[tuple[str, ...], list[CategoryGroup]] = {}
    for group in groups:
        share = share_of(group.categories, group.not_before)
        if share:
            segments.setdefault(share, []).append(group)
    return segments


def _in_groups(groups: Sequence[CategoryGroup]) -> ColumnElement[bool]:
    """The rows of these groups (most have no pause: one IN list for them)."""
    key, paused = _categories_key(), subscribers_table.c.paused_until
    plain = [g.key for g in groups if g.not_before is None]
    clauses = [and_(key.in_(plain), paused.is_(None))] if plain else []
    clauses += [
        and_(key == g.key, paused == g.not_before) for g in groups if g.not_before is not None
    ]
    return or_(*clauses)


def create_run(
    store: Store,
    digest: str,
    as_of: datetime,
    post_ids: Sequence[str],
    share_of: ShareOf,
    trigger: str = "manual",
    *,
    known_unfinished: Collection[int] = (),
) -> int | None:
    """Record a run, its segments, every delivery and its posts in one transaction.

    The deliveries are written by the database (INSERT ... SELECT per segment), so creating a
    run of a million costs no Python object per subscriber. Returns the new run id; 0 when no
    active subscriber's share is non-empty (nothing is written); None when another sender got
    there first (an unfinished run of the digest other than `known_unfinished` exists, or one
    of the posts was used up meanwhile): finish that one instead.
    """
    now = utcnow()
    with store.write_transaction() as session:
        _lock_digest(session, store, digest)
        if {r.id for r in unfinished_runs(session, digest)} - set(known_unfinished):
            return None
        if sent_post_ids(session, digest).intersection(post_ids):
            return None
        segments = segment_groups(category_groups(session, digest, now), share_of)
        if not segments:
            return 0
        run_id = session.execute(
            insert(Run)
            .values(
                digest=digest,
                as_of=as_of,
                started_at=now,
                status=RUN_SENDING,
                post_ids=list(post_ids),
                trigger=trigger,
            )
            .returning(Run.id)
        ).scalar_one()
        for seg_posts, groups in segments.items():
            segment_id = session.execute(
                insert(Segment)
                .values(run_id=run_id, post_ids=list(seg_posts))
                .returning(Segment.id)
            ).scalar_one()
            add_deliveries(session, run_id, segment_id, digest, now, groups)
        if post_ids:
            session.execute(
                insert(SentPost),
                [{"digest": digest, "post_id": p, "run_id": run_id} for p in post_ids],
            )
        return int(run_id)


def add_deliveries(
    session: Session,
    run_id: int,
    segment_id: int,
    digest: str,
    now: datetime,
    groups: Sequence[CategoryGroup],
    *,
    among: ColumnElement[bool] | None = None,
    receiving_at: datetime | None = None,
) -> int:
    """A pending delivery in the segment for each recipient (at `receiving_at`, default now)
    of these groups and `among`, written by the database (INSERT ... SELECT): no Python object
    per subscriber. How many."""
    recipients = (
        select(
            literal(run_id),
            literal(segment_id),
            subscribers_table.c.id,
            literal(D_PENDING),
            literal(0),
            literal(now, deliveries_table.c.updated_at.type),
        )
        .where(
            receives_digest(digest, now if receiving_at is None else receiving_at),
            _in_groups(groups),
            true() if among is None else among,
        )
        .order_by(subscribers_table.c.id)
    )
    result = session.execute(
        insert(deliveries_table).from_select(
            ["run_id", "segment_id", "subscriber_id", "status", "attempts", "updated_at"],
            recipients,
        )
    )
    return int(result.rowcount)  # type: ignore[attr-defined]


def give_up_deferred(store: Store, run_id: int, *, started_before: datetime) -> int:
    """Fail the run's deliveries still deferred (4xx) if the run started before the cutoff.

    A mailbox that stays full, or a relay that keeps deferring one address, must not hold the
    run, and with it every later digest, open forever. The subscriber keeps their status:
    a deferral is not a bounce. Returns how many deliveries were given up.
    """
    now = utcnow()
    with writing(store) as conn:
        started = conn.execute(
            select(runs_table.c.started_at).where(runs_table.c.id == run_id)
        ).scalar_one_or_none()
        if started is None or started >= started_before:
            return 0
        result = conn.execute(
            update(deliveries_table)
            .where(
                deliveries_table.c.run_id == run_id,
                deliveries_table.c.status == D_PENDING,
                deliveries_table.c.attempts > 0,
            )
            .values(
                status=D_FAILED,
                last_reply=literal("gave up after retrying: ")
                + func.coalesce(deliveries_table.c.last_reply, ""),
                claimed_by=None,
                updated_at=now,
            )
        )
        return int(result.rowcount or 0)


def finish_run_if_done(store: Store, run_id: int) -> bool:
    """Mark the run finished when no delivery is pending or in flight; True if it is finished."""
    with writing(store) as conn:
        left = conn.execute(
            select(func.count())
            .select_from(deliveries_table)
            .where(
                deliveries_table.c.run_id == run_id,
                deliveries_table.c.status.in_((D_PENDING, D_SENDING)),
            )
        ).scalar_one()
        if left:
            return False
        conn.execute(
            update(runs_table)
            .where(runs_table.c.id == run_id, runs_table.c.status == RUN_SENDING)
            .values(status=RUN_FINISHED, finished_at=utcnow())
        )
        return True


def run_counts(session: Session, run_id: int) -> dict[str, int]:
    """Deliveries of a run by status (every status present, zero if none)."""
    counts = dict.fromkeys((D_PENDING, D_SENDING, D_SENT, D_FAILED, D_SKIPPED), 0)
    stmt = (
        select(deliveries_table.c.status, func.count().label("n"))
        .where(deliveries_table.c.run_id == run_id)
        .group_by(deliveries_table.c.status)
    )
    for row in session.execute(stmt):
        counts[str(row.status)] = int(row.n)
    return counts


def history(session: Session, digest: str | None = None) -> list[RunSummary]:
    """Past runs, newest first, with their delivery counts."""
    runs_stmt = select(Run).order_by(Run.started_at.desc(), Run.id.desc())
    if digest is not None:
        runs_stmt = runs_stmt.where(Run.digest == digest)
    runs = list(session.scalars(runs_stmt))
    counts: dict[int, dict[str, int]] = {}
    count_stmt = select(
        deliveries_table.c.run_id, deliveries_table.c.status, func.count().label("n")
    ).group_by(deliveries_table.c.run_id, deliveries_table.c.status)
    if digest is not None:
        count_stmt = count_stmt.where(deliveries_table.c.run_id.in_([r.id for r in runs]))
    for row in session.execute(count_stmt):
        counts.setdefault(int(row.run_id), {})[str(row.status)] = int(row.n)
    came_back = run_bounces(session, [r.id for r in runs])
    by_relay: dict[int, dict[str, int]] = {}
    relay_stmt = (
        select(deliveries_table.c.run_id, deliveries_table.c.relay, func.count().label("n"))
        .where(deliveries_table.c.status == D_SENT, deliveries_table.c.relay.is_not(None))
        .group_by(deliveries_table.c.run_id, deliveries_table.c.relay)
    )
    if digest is not None:
        relay_stmt = relay_stmt.where(deliveries_table.c.run_id.in_([r.id for r in runs]))
    for row in session.execute(relay_stmt):
        by_relay.setdefault(int(row.run_id), {})[str(row.relay)] = int(row.n)
    out = []
    for run in runs:
        by_status = counts.get(run.id, {})
        out.append(
            RunSummary(
                id=run.id,
                digest=run.digest,
                as_of=run.as_of,
                started_at=run.started_at,
                finished_at=run.finished_at,
                status=run.status,
                trigger=run.trigger,
                posts=len(run.post_ids or ()),
                sent=by_status.get(D_SENT, 0),
                failed=by_status.get(D_FAILED, 0),
                pending=by_status.get(D_PENDING, 0) + by_status.get(D_SENDING, 0),
                skipped=by_status.get(D_SKIPPED, 0),
                bounced_later=came_back[run.id].bounced_later if run.id in came_back else 0,
                complaints=came_back[run.id].complaints if run.id in came_back else 0,
                possible_resends=run.possible_resends,
                edition=run.edition,
                relays=by_relay.get(run.id, {}),
            )
        )
    return out


def sent_post_runs(session: Session, digest: str) -> dict[str, int]:
    """Each post an earlier run of `digest` included, with the id of that run."""
    rows = session.execute(
        select(SentPost.post_id, SentPost.run_id).where(SentPost.digest == digest)
    )
    return {str(row.post_id): int(row.run_id) for row in rows}


def previous_edition(session: Session, digest: str, before: datetime) -> datetime | None:
    """When the edition of `digest` before `before` went out (its as_of); None: the first."""
    newest: datetime | None = session.scalar(
        select(func.max(Run.as_of)).where(Run.digest == digest, Run.as_of < before)
    )
    return newest
