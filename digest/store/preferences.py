"""What subscribers change themselves: leave one digest, pause for a while.

web (unsubscribe links, later the preferences page) ─► store.preferences ─► subscribers table.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime

from digest.store import Store
from digest.store.models import UNSUBSCRIBED, Subscriber, utcnow
from digest.store.signups import UNSUBSCRIBABLE
from digest.store.subscribers import SubscriberRow, change_status, row_of
from digest.store.subscriptions import set_digests

# The pauses a subscriber may choose, in weeks.
PAUSE_WEEKS = (1, 2, 4)


@dataclass(frozen=True)
class DigestUnsubscribe:
    """What leaving one digest did: the subscriber, and the configured digests they are still on."""

    subscriber: SubscriberRow
    still_on: tuple[str, ...]  # empty: they are unsubscribed from everything


def unsubscribe_from_digest(
    store: Store,
    subscriber_id: int,
    digest: str,
    *,
    every_digest: Collection[str],
    reason: str,
    now: datetime | None = None,
) -> DigestUnsubscribe | None:
    """Take a subscriber off one digest (idempotent); None when they were erased.

    A subscriber on every digest is put on each configured one but `digest`. When no configured
    digest is left, or `digest` is not one (renamed since the email went out: the link must
    still stop the mail), they become unsubscribed, their digests kept for a resubscribe.
    Leaving everything at once is store.signups.unsubscribe_id.
    """
    when = now or utcnow()
    with store.write_transaction() as session:
        sub = session.get(Subscriber, subscriber_id)
        if sub is None:
            return None
        chosen = set(every_digest) if sub.all_digests else {s.digest for s in sub.subscriptions}
        still_on = tuple(sorted((chosen - {digest}) & set(every_digest)))
        if digest in every_digest and still_on:
            set_digests(sub, sorted(chosen - {digest}))
        else:
            # Their digests stay as they were: a resubscribe brings them back.
            still_on = ()
            change_status(session, sub.id, UNSUBSCRIBED, reason, when, only_from=UNSUBSCRIBABLE)
        sub.updated_at = when
        session.flush()
        return DigestUnsubscribe(row_of(sub), still_on)


def pause_subscriber(
    store: Store, subscriber_id: int, until: datetime | None, *, now: datetime | None = None
) -> SubscriberRow | None:
    """Send a subscriber nothing before `until` (None: resume now); None when erased.

    Posts dated before `until` are never sent to them afterwards: a pause ends without a
    burst of the posts it skipped.
    """
    when = now or utcnow()
    with store.write_transaction() as session:
        sub = session.get(Subscriber, subscriber_id)
        if sub is None:
            return None
        if until is None and sub.paused_until is not None and sub.paused_until > when:
            sub.paused_until = when  # resumed early: posts from the pause stay skipped
        elif until is not None:
            sub.paused_until = until
        sub.updated_at = when
        session.flush()
        return row_of(sub)
