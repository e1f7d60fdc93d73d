"""What subscribers change themselves on the preferences page: digests, categories, name, pause.

web (GET/POST /preferences/<token>) ─► store.preferences ─► subscribers and subscriptions tables.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from digest.addresses import clean_name
from digest.errors import BadInputError
from digest.store import Store
from digest.store.models import ACTIVE, Subscriber, Subscription, utcnow
from digest.store.signups import StaleLinkError, link_holds
from digest.store.subscribers import SubscriberRow, clean_categories, row_of

# The pauses a subscriber may choose, in weeks.
PAUSE_WEEKS = (1, 2, 4)


@dataclass(frozen=True)
class PreferencesChange:
    """What the preferences form asks for.

    digests None: every digest, present and future. pause_until None: keep the pause as it is;
    a time not after now: resume now (the skipped posts stay skipped).
    """

    name: str
    categories: Sequence[str]
    digests: Sequence[str] | None
    pause_until: datetime | None = None
    resume: bool = False


def set_digests(sub: Subscriber, digests: Sequence[str] | None) -> bool:
    """Put a subscriber on exactly `digests` (None: every digest); True if anything changed."""
    if digests is None:
        if sub.all_digests:
            return False
        sub.all_digests = True
        sub.subscriptions = []
        return True
    wanted = sorted(set(digests))
    current = [s.digest for s in sub.subscriptions]
    if not sub.all_digests and sorted(current) == wanted:
        return False
    sub.all_digests = False
    keep = [s for s in sub.subscriptions if s.digest in wanted]
    sub.subscriptions = keep + [Subscription(digest=name) for name in wanted if name not in current]
    return True


def set_pause(sub: Subscriber, until: datetime | None, *, now: datetime) -> bool:
    """Send a subscriber nothing before `until` (None: resume now); True if anything changed.

    Resuming early sets the pause's end to now, so the posts of the pause are never sent.
    """
    if until is None:
        if sub.paused_until is not None and sub.paused_until > now:
            sub.paused_until = now
            return True
        return False
    if sub.paused_until == until:
        return False
    sub.paused_until = until
    return True


def preferences_for_link(
    store: Store, subscriber_id: int, link_key: str | None
) -> SubscriberRow | None:
    """The subscriber a preferences link names; None when erased, StaleLinkError when the link
    was made for an earlier subscription."""
    with store.session() as session:
        sub = session.get(Subscriber, subscriber_id)
        if sub is None:
            return None
        row = row_of(sub)
    if not link_holds(row, link_key):
        raise StaleLinkError(subscriber_id)
    return row


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
        set_digests(sub, change.digests)
        if change.resume:
            set_pause(sub, None, now=when)
        elif change.pause_until is not None:
            set_pause(sub, change.pause_until, now=when)
        sub.updated_at = when
        session.flush()
        return row_of(sub)
