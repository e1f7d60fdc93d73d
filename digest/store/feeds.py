"""What digest remembers about a source feed: its last good fetch and undated entries' dates.

store ─► sources.feed: conditional GET validators, the body a 304 stands for, first-seen times.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from digest.store.models import FeedEntry, FeedState


@dataclass(frozen=True)
class SavedFetch:
    """The last good fetch of a feed."""

    etag: str | None
    last_modified: str | None
    body: bytes | None
    fetched_at: datetime


def feed_key(url: str) -> str:
    """The key a feed's rows are stored under (URLs can be longer than a key column)."""
    return hashlib.sha256(url.encode("utf-8")).hexdigest()


def saved_fetch(session: Session, url: str) -> SavedFetch | None:
    """The last good fetch of `url`, if there was one."""
    row = session.get(FeedState, feed_key(url))
    if row is None:
        return None
    return SavedFetch(row.etag, row.last_modified, row.body, row.fetched_at)


def save_fetch(
    session: Session,
    url: str,
    *,
    etag: str | None,
    last_modified: str | None,
    body: bytes,
    fetched_at: datetime,
) -> None:
    """Remember a fetch that parsed: the next request is conditional on it."""
    row = session.get(FeedState, feed_key(url))
    if row is None:
        row = FeedState(feed_key=feed_key(url), feed_url=url)
        session.add(row)
    row.etag = etag[:512] if etag else None
    row.last_modified = last_modified[:64] if last_modified else None
    row.body = body
    row.fetched_at = fetched_at


def first_seen(
    session: Session, url: str, entry_ids: Iterable[str], now: datetime
) -> Mapping[str, datetime]:
    """When each entry was first seen; entries not seen before are recorded as seen `now`."""
    key = feed_key(url)
    wanted = list(dict.fromkeys(entry_ids))
    known: dict[str, datetime] = {}
    for start in range(0, len(wanted), 500):
        chunk = wanted[start : start + 500]
        rows = session.execute(
            select(FeedEntry.entry_id, FeedEntry.first_seen).where(
                FeedEntry.feed_key == key, FeedEntry.entry_id.in_(chunk)
            )
        )
        known.update({row.entry_id: row.first_seen for row in rows})
    for entry_id in wanted:
        if entry_id not in known:
            session.add(FeedEntry(feed_key=key, entry_id=entry_id, first_seen=now))
            known[entry_id] = now
    return known
