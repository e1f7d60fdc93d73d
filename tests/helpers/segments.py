"""Subscribers grouped by their share, as a run's segments group them (for render tests)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import TypeVar

from digest.selection.rules import share_for
from digest.sources.post import Post

K = TypeVar("K")


def group_segments(
    posts: Sequence[Post],
    subscribers: Iterable[tuple[K, Sequence[str]]],
    not_before: Mapping[K, datetime] | None = None,
) -> dict[tuple[str, ...], list[K]]:
    """Subscribers grouped by their share (key: its post ids, newest first); empty shares left out.

    `not_before` gives subscribers back from a pause: their share has no post dated before it
    (what the pause skipped is not sent in a burst). Groups appear in the order of their first
    subscriber.
    """
    groups: dict[tuple[str, ...], list[K]] = {}
    for key, categories in subscribers:
        share = share_for(posts, categories)
        since = not_before.get(key) if not_before else None
        if since is not None:
            share = [post for post in share if post.date >= since]
        if share:
            groups.setdefault(tuple(p.id for p in share), []).append(key)
    return groups
