"""What subscribers change themselves: leave one digest, pause, the preferences page's choices.

web (unsubscribe links, GET/POST /preferences/<token>) ─► store.preferences ─► subscribers table.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime

from digest.addresses import clean_name
from digest.errors import BadInputError
from digest.store import Store
from digest.store.models import ACTIVE, UNSUBSCRIBED, Subscriber, utcnow
from digest.store.signups import UNSUBSCRIBABLE, StaleLinkError, link_holds
from digest.store.subscribers import SubscriberRow, change_status, clean_timezone, row_of
from digest.store.subscriptions import clean_categories, clean_digests, set_digests

# The pauses a subscriber may choose, in weeks.
PAUSE_WEEKS = (1, 2, 4)


@dataclass(frozen=True)
class DigestUnsubscribe:
    """What leaving one digest did: the subscriber, and the configured digests they are still on."""

    subscriber: SubscriberRow
    still_on: tuple[str, ...]  # empty: they are unsubscribed from everything


@dataclass(frozen=True)
class PreferencesChange:
    """What the preferences form asks for.

    digests None: every digest, present and future. pause_until None: keep the pause as it is;
    resume True: end the pause now (the skipped posts stay skipped).
    """

    name: str
    categories: Sequence[str]
    digests: Sequence[str] | None
    pause_until: datetime | None = None
    resume: bool = False
    timezone: str | None = None  # an IANA name, "" for site.timezone; None: keep as it is


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
        _set_pause(sub, until, when)
        sub.updated_at = when
        session.flush()
        return row_of(sub)


def _set_pause(sub: Subscriber, until: datetime | None, now: datetime) -> None:
    if until is not None:
        sub.paused_until = until
    elif sub.paused_until is not None and sub.paused_until > now:
        sub.paused_until = now  # resumed early: posts from the pause stay skipped


def save_preferences(
    store: Store,
    subscriber_id: int,
    link_key: str | None,
    change: PreferencesChange,
    *,
    now: datetime | None = None,
) -> SubscriberRow | None:
    """Save an active subscriber's choices in one transaction (the next run uses them).

    None when erased; StaleLinkError when the link is for an earlier subscription;
    BadInputError for a bad name or category, or when the subscriber is not active.
    """
    when = now or utcnow()
    try:
        name = clean_name(change.name)
    except ValueError as exc:
        raise BadInputError(str(exc)) from None
    categories = clean_categories(change.categories)
    digests = clean_digests(change.digests) if change.digests is not None else None
    with store.write_transaction() as session:
        sub = session.get(Subscriber, subscriber_id)
        if sub is None:
            return None
        if not link_holds(row_of(sub), link_key):
            raise StaleLinkError(subscriber_id)
        if sub.status != ACTIVE:
            raise BadInputError(f"the subscription is {sub.status}: subscribe again first")
        sub.name = name
        if list(sub.categories or ()) != categories:
            sub.categories = categories
        set_digests(sub, digests)
        if change.timezone is not None:
            sub.timezone = clean_timezone(change.timezone) or None
        if change.resume:
            _set_pause(sub, None, when)
        elif change.pause_until is not None:
            _set_pause(sub, change.pause_until, when)
        sub.updated_at = when
        session.flush()
        return row_of(sub)
