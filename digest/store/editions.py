"""deliver: local_time: one run per edition, with deliveries added zone by zone as each comes due.

delivery.editions ─► store.editions: the edition's run (its posts fixed when it opens), and
each zone's subscribers added once (the run's unique (run, subscriber) keeps it so).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import ColumnElement, and_, exists, func, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from digest.store import Store
from digest.store.models import (
    RUN_SENDING,
    Delivery,
    Run,
    Segment,
    SentPost,
    Subscriber,
    utcnow,
)
from digest.store.recipients import receives_digest
from digest.store.runs import (
    ShareOf,
    add_deliveries,
    category_groups,
    segment_groups,
    sent_post_ids,
)


def zone_of(site_zone: str) -> ColumnElement[str]:
    """A subscriber's zone: their own, else the site's."""
    return func.coalesce(Subscriber.timezone, site_zone)


def receiver_zones(session: Session, digest: str, site_zone: str, now: datetime) -> set[str]:
    """The zones of everyone a run of `digest` would mail at `now`."""
    stmt = select(zone_of(site_zone)).where(receives_digest(digest, now)).distinct()
    return {str(z) for z in session.scalars(stmt)}


def edition_run(session: Session, digest: str, edition: str) -> Run | None:
    """The run of this edition, or None when no zone has reached it yet."""
    return session.scalars(
        select(Run).where(Run.digest == digest, Run.edition == edition)
    ).one_or_none()


def later_edition(session: Session, digest: str, edition: str) -> str | None:
    """The latest edition after this one that already has a run, or None."""
    return session.scalars(
        select(func.max(Run.edition)).where(Run.digest == digest, Run.edition > edition)
    ).one_or_none()


def open_edition(
    store: Store,
    digest: str,
    edition: str,
    as_of: datetime,
    post_ids: Sequence[str],
    trigger: str,
) -> int | None:
    """The edition's run with its posts (fixed now, for every zone); no deliveries yet.

    None when another process opened it first, or one of the posts was used up meanwhile.
    """
    try:
        with store.write_transaction() as session:
            if edition_run(session, digest, edition) is not None:
                return None
            if sent_post_ids(session, digest).intersection(post_ids):
                return None
            run_id = session.execute(
                insert(Run)
                .values(
                    digest=digest,
                    as_of=as_of,
                    started_at=utcnow(),
                    status=RUN_SENDING,
                    post_ids=list(post_ids),
                    trigger=trigger,
                    edition=edition,
                )
                .returning(Run.id)
            ).scalar_one()
            if post_ids:
                session.execute(
                    insert(SentPost),
                    [{"digest": digest, "post_id": p, "run_id": run_id} for p in post_ids],
                )
            return int(run_id)
    except IntegrityError:  # the same edition opened by another process (unique index)
        return None


def add_zone(
    store: Store,
    run_id: int,
    digest: str,
    zone: str,
    zone_at: datetime,
    site_zone: str,
    share_of: ShareOf,
) -> int:
    """Add the zone's subscribers to the edition's run, each once; how many were added.

    Those who joined before the zone's time and are not in the run yet (a zone reached again,
    or one who joined after their zone's first send, is not mailed twice or late). Grouped by
    their choice of categories and written by the database, as a run's are (store.runs).
    """
    now = utcnow()
    with store.write_transaction() as session:
        in_run = exists().where(Delivery.run_id == run_id, Delivery.subscriber_id == Subscriber.id)
        among = and_(zone_of(site_zone) == zone, Subscriber.created_at <= zone_at, ~in_run)
        groups = category_groups(session, digest, zone_at, among=among)
        if not groups:
            return 0
        segments = {
            tuple(s.post_ids): s.id
            for s in session.scalars(select(Segment).where(Segment.run_id == run_id))
        }
        added = 0
        for share, share_groups in segment_groups(groups, share_of).items():
            if share not in segments:
                segments[share] = session.execute(
                    insert(Segment)
                    .values(run_id=run_id, post_ids=list(share))
                    .returning(Segment.id)
                ).scalar_one()
            added += add_deliveries(
                session,
                run_id,
                segments[share],
                digest,
                now,
                share_groups,
                among=among,
                receiving_at=zone_at,
            )
        if added:
            session.execute(
                update(Run).where(Run.id == run_id).values(status=RUN_SENDING, finished_at=None)
            )
        return added
