"""What the report draws, read from the database: subscribers by day and status, who reads which
category and digest.

report ─► store.stats (the runs come from store.runs.history): grouped in SQL where it can be,
so a list of a million subscribers comes back as a few hundred rows.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import date

from sqlalchemy import func, select

from digest.store import Store
from digest.store.models import ACTIVE, Subscriber, Subscription


@dataclass(frozen=True)
class SubscriberGroup:
    """`count` subscribers made on `created` whose status became `status` on `changed`."""

    created: date
    status: str
    changed: date
    count: int


def _day(value: object) -> date:
    """A date() of either database (SQLite gives text, PostgreSQL a date)."""
    return value if isinstance(value, date) else date.fromisoformat(str(value)[:10])


def subscriber_groups(store: Store) -> list[SubscriberGroup]:
    """Every subscriber, grouped by the day they were made, their status and the day it came
    (UTC days). The day they confirmed counts as made when the record says so (an import
    brings people who joined elsewhere years ago)."""
    made = func.coalesce(Subscriber.consent_confirmed_at, Subscriber.created_at)
    created, changed = func.date(made), func.date(Subscriber.status_changed_at)
    query = select(created, Subscriber.status, changed, func.count()).group_by(
        created, Subscriber.status, changed
    )
    with store.session() as session:
        return [
            SubscriberGroup(_day(made_on), str(status), _day(changed_on), int(count))
            for made_on, status, changed_on, count in session.execute(query)
        ]


def active_by_category(store: Store) -> tuple[Counter[str], int]:
    """(active subscribers per category, active subscribers with none: every post)."""
    per: Counter[str] = Counter()
    everything = 0
    query = select(Subscriber.categories).where(Subscriber.status == ACTIVE)
    with store.session() as session:
        for (categories,) in session.execute(query.execution_options(yield_per=5000)):
            if categories:
                per.update({str(c) for c in categories})
            else:
                everything += 1
    return per, everything


def active_by_digest(store: Store, every_digest: list[str]) -> dict[str, int]:
    """Active subscribers on each digest of the config (on every digest, or chosen)."""
    with store.session() as session:
        on_all = session.scalar(
            select(func.count()).where(Subscriber.status == ACTIVE, Subscriber.all_digests)
        )
        chosen = dict(
            session.execute(
                select(Subscription.digest, func.count())
                .join(Subscriber, Subscriber.id == Subscription.subscriber_id)
                .where(Subscriber.status == ACTIVE, Subscriber.all_digests.is_(False))
                .group_by(Subscription.digest)
            ).all()
        )
    return {name: int(on_all or 0) + int(chosen.get(name, 0)) for name in every_digest}
