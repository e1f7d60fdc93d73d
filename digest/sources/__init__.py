"""Where posts come from: a Jekyll folder, a Hugo site, or an RSS/Atom/JSON feed.

settings ─► sources ─► selection: open_source(site) gives the site's `Source`; its load() reads
the same `Post` values (sources.post) whatever the kind of site. Nothing after this package
knows which source it was, or calls a reader itself. Every reader opens files and parses
YAML, TOML and JSON through sources.guards (regular files only, one size cap, bounded
aliases and nesting): a bad file is one warning, and the other posts are read.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from datetime import datetime
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from digest.settings import Settings, SiteSettings
    from digest.sources.post import PostsLoad
    from digest.store import Store


class Source(ABC):
    """A site's posts, whichever kind of site it is: what selection, preview, the sign-up and
    preferences pages and every command ask."""

    @abstractmethod
    def load(
        self, *, as_of: datetime, now: datetime | None = None, include_drafts: bool = False
    ) -> PostsLoad:
        """The posts, newest first, and one problem for each file or entry that could not be
        read. Future and expired pages are judged at `as_of`; an undated feed entry is dated
        `now` (default: `as_of`) when first seen. FeedError when a feed cannot be fetched."""

    @abstractmethod
    def describe(self) -> str:
        """Where the posts are read from, naming the config key (for hints)."""

    def categories(self, *, now: datetime) -> list[str]:
        """Every category of the posts published at `now`, once each (any case), sorted."""
        from digest.sources.post import distinct_categories

        posts = self.load(as_of=now, now=now).posts
        return distinct_categories(c for post in posts if post.published for c in post.categories)


def open_source(
    site: SiteSettings, *, store: Store | None = None, database_url: str | None = None
) -> Source:
    """The source `site.source` names. A feed keeps what it saw (validators, when an undated
    entry was first seen) in `store`, else in a store opened from `database_url` for each
    load; with neither it remembers nothing (a preview before the database exists)."""
    # Each source imports its own parsers only when it is the one configured.
    if site.source == "hugo":
        from digest.sources.hugo.reader import HugoSource

        return HugoSource(site)
    if site.source == "feed":
        from digest.sources.feed.reader import FeedSource

        return FeedSource(site, store=store, database_url=database_url)
    from digest.sources.jekyll.reader import JekyllSource

    return JekyllSource(site)


def load_site_posts(
    settings: Settings,
    *,
    as_of: datetime,
    now: datetime,
    include_drafts: bool = False,
    store: Store | None = None,
    remember: bool = True,
) -> PostsLoad:
    """open_source(settings.site).load(...) for a command: a feed remembers in `store`, else in
    `database.url` when `remember` (a preview before the database exists does not)."""
    url = settings.database.url if remember and store is None else None
    source = open_source(settings.site, store=store, database_url=url)
    return source.load(as_of=as_of, now=now, include_drafts=include_drafts)


def describe_source(site: SiteSettings) -> str:
    """Where the site's posts are read from, naming the key (for hints)."""
    return open_source(site).describe()
