"""Pure functions over posts: which are new for a digest at a time, and each subscriber's share.

posts ─► selection ─► render / delivery; no I/O and no clock: `as_of` is always passed in.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Hashable, Iterable, Sequence
from datetime import datetime
from typing import TypeVar

from digest.settings import DigestSettings
from digest.sources.post import Post

K = TypeVar("K", bound=Hashable)


def is_published(post: Post, as_of: datetime) -> bool:
    """Not `published: false`, not a draft, and dated at or before `as_of`."""
    return post.published and not post.draft and post.date <= as_of


def in_categories(post: Post, categories: Sequence[str]) -> bool:
    """True when one of the post's categories is in `categories` (case-insensitive; empty = all)."""
    if not categories:
        return True
    wanted = {c.casefold() for c in categories}
    return any(c.casefold() in wanted for c in post.categories)


def _newest_first(posts: Iterable[Post]) -> list[Post]:
    ordered = sorted(posts, key=lambda p: p.id)
    ordered.sort(key=lambda p: p.date, reverse=True)
    return ordered


def select_new(
    posts: Iterable[Post], digest: DigestSettings, as_of: datetime, sent_ids: Collection[str]
) -> list[Post]:
    """The posts new for `digest` at `as_of` (CONTRACT "Which posts are new"), newest first."""
    since = as_of - digest.lookback
    sent = sent_ids if isinstance(sent_ids, set | frozenset) else set(sent_ids)
    new = (
        post
        for post in posts
        if is_published(post, as_of)
        and post.date > since
        and in_categories(post, digest.categories)
        and post.id not in sent
    )
    return _newest_first(new)[: digest.max_posts]


def share_for(posts: Sequence[Post], categories: Sequence[str]) -> list[Post]:
    """A subscriber's share of a run's posts, in the run's order; no categories = every post."""
    return [post for post in posts if in_categories(post, categories)]


def latest_posts(
    posts: Iterable[Post], digest: DigestSettings, as_of: datetime, limit: int
) -> list[Post]:
    """The newest published posts in the digest's categories, ignoring lookback and sent ids."""
    chosen = (p for p in posts if is_published(p, as_of) and in_categories(p, digest.categories))
    return _newest_first(chosen)[: max(limit, 0)]


def share_of_posts(
    posts: Sequence[Post],
) -> Callable[[list[str], datetime | None], tuple[str, ...] | None]:
    """The share (post ids, newest first) of the posts a choice of categories gets.

    Back from a pause (not_before): no post dated before it (what the pause skipped is not
    sent in a burst).
    """

    def share(categories: list[str], not_before: datetime | None) -> tuple[str, ...] | None:
        chosen = share_for(posts, categories)
        if not_before is not None:
            chosen = [post for post in chosen if post.date >= not_before]
        return tuple(p.id for p in chosen) or None

    return share
