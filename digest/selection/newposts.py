"""Which posts a digest shows at a time: the new ones, or the latest when nothing is new.

posts + store (sent posts) ─► selection; send, send-test, preview and `digest posts` ask here.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from digest.errors import NotFoundError
from digest.selection.explain import Reader, Unread, Verdict, explain_posts, explain_share
from digest.selection.rules import latest_posts, select_new, share_for
from digest.settings import DigestSettings, Settings
from digest.sources import load_site_posts
from digest.sources.post import Post
from digest.store import peek

if TYPE_CHECKING:
    from digest.store import Store

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ShownPosts:
    """The posts a test send or a preview shows, and whether they are the fallback."""

    posts: list[Post]
    latest: bool  # nothing was new: the latest posts are shown instead


def posts_by_id(
    settings: Settings, *, as_of: datetime | None = None, store: Store | None = None
) -> dict[str, Post]:
    """Every post of the site by id (source path, or a feed entry's id), as published at
    `as_of` (default now); malformed ones are warned about and skipped. FeedError when the
    site's feed cannot be fetched: nothing has been used up then."""
    now = datetime.now(UTC)
    loaded = load_site_posts(settings, as_of=as_of or now, now=now, store=store)
    for problem in loaded.problems:
        log.warning("skipping post %s", problem)
    return {p.id: p for p in loaded.posts}


def new_posts(
    store: Store | None, digest: DigestSettings, posts: Iterable[Post], as_of: datetime
) -> list[Post]:
    """The posts new for `digest` at `as_of` (CONTRACT "Which posts are new"), newest first.

    Published, in the digest's categories, within its lookback, not in an earlier run of it;
    at most `max_posts`. `store` None: there is no database yet, so no run has sent anything.
    """
    sent: set[str] = set()
    if store is not None:
        from digest.store.runs import sent_post_ids

        with store.session() as session:
            sent = sent_post_ids(session, digest.name)
    return select_new(posts, digest, as_of, sent)


def new_posts_in(
    database_url: str, digest: DigestSettings, posts: Iterable[Post], as_of: datetime
) -> list[Post]:
    """new_posts for a command that holds no store: a read-only look at an SQLite file when it
    can (no SQLAlchemy to import: `digest posts` starts in a third of the time), else the store."""
    sent = peek.sent_post_ids(database_url, digest.name)
    if sent is not None:
        return select_new(posts, digest, as_of, sent)
    from digest.store import open_store

    with open_store(database_url) as store:
        return new_posts(store, digest, posts, as_of)


def posts_to_show(
    store: Store | None,
    digest: DigestSettings,
    posts: Sequence[Post],
    as_of: datetime,
    *,
    categories: Sequence[str] = (),
) -> ShownPosts:
    """What `send-test` and `preview` show: the new posts, or the latest when none is new.

    `categories` narrows both to a subscriber's share (empty: every post). The fallback is the
    latest published posts in the digest's categories (and the share's), at most `max_posts`,
    whatever the lookback and earlier runs say.
    """
    shown = share_for(new_posts(store, digest, posts, as_of), categories)
    if shown:
        return ShownPosts(shown, latest=False)
    every = latest_posts(posts, digest, as_of, limit=len(posts))
    return ShownPosts(share_for(every, categories)[: digest.max_posts], latest=True)


def _site_path(settings: Settings, path: str) -> str:
    """A problem file's path as posts give theirs: relative to the site's folder."""
    root = settings.site.root or settings.site.posts_dir.parent
    try:
        return Path(path).relative_to(root).as_posix()
    except ValueError:
        return path


@dataclass(frozen=True)
class Explanation:
    """`digest explain`: every post with its verdict, and the subscriber asked about."""

    verdicts: list[Verdict]
    reader: Reader | None = None

    def as_json(self) -> list[dict[str, Any]] | dict[str, Any]:
        """CONTRACT's shape: a list of posts, or {"subscriber", "posts"} with --subscriber."""
        posts = [v.as_dict() for v in self.verdicts]
        if self.reader is None:
            return posts
        return {"subscriber": self.reader.as_dict(), "posts": posts}


def explain_digest(
    settings: Settings,
    store: Store,
    name: str,
    *,
    as_of: datetime,
    subscriber_email: str | None = None,
) -> Explanation:
    """Why each post of the site is in or out of digest `name` at `as_of` (drafts and files
    that could not be read included), and with `subscriber_email` whether they get it."""
    digest = settings.digest(name)
    reader: Reader | None = None
    if subscriber_email:
        from digest.store.subscribers import find_subscriber

        row = find_subscriber(store, subscriber_email)
        if row is None:
            raise NotFoundError(f"no subscriber {subscriber_email.strip()!r} in the database")
        reader = Reader(
            email=row.email,
            status=row.status,
            digests=tuple(row.digest_names(settings.digests)),
            categories=row.categories,
            paused_until=row.paused_until,
            timezone=row.timezone,
        )
    now = datetime.now(UTC)
    loaded = load_site_posts(settings, as_of=as_of, now=now, include_drafts=True, store=store)
    unread = [
        Unread(_site_path(settings, problem.path), problem.reason) for problem in loaded.problems
    ]
    from digest.store.runs import sent_post_runs

    with store.session() as session:
        sent = sent_post_runs(session, digest.name)
    verdicts = explain_posts(loaded.posts, unread, digest, as_of, sent)
    if reader is not None:
        by_id = {post.id: post for post in loaded.posts}
        verdicts = explain_share(verdicts, by_id, reader, digest.name, as_of)
    return Explanation(verdicts, reader)
