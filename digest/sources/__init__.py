"""Where posts come from: a Jekyll folder, a Hugo site, or an RSS/Atom/JSON feed.

config ─► sources ─► selection: load_site_posts() reads `site.source` into the same `Post`
values (sources.post); selection, render and delivery never know which source it was.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from digest.settings import Settings, SiteSettings
    from digest.sources.post import PostsLoad
    from digest.store import Store


def load_site_posts(
    settings: Settings,
    *,
    as_of: datetime,
    now: datetime,
    include_drafts: bool = False,
    store: Store | None = None,
    remember: bool = True,
) -> PostsLoad:
    """The site's posts, newest first: future and expired pages are judged at `as_of`, an
    undated feed entry is dated `now` when first seen. A feed keeps its state in `store`
    (opened from `database.url` when none is given and `remember`; a preview before the
    database exists does not remember). FeedError when it cannot be fetched or parsed."""
    site = settings.site
    # Each source imports its own parsers only when it is the one configured.
    if site.source == "hugo":
        from digest.sources.hugo.reader import load_hugo_posts

        return load_hugo_posts(
            site.root or site.posts_dir.parent,
            now=as_of,
            sections=site.sections,
            lang=site.lang,
            include_drafts=include_drafts,
        )
    if site.source == "feed":
        from digest.sources.feed.reader import load_feed_posts
        from digest.store import open_store

        assert site.feed_url is not None  # config checks it
        if store is not None or not remember:
            return load_feed_posts(site.feed_url, store, now=now, tz=site.tz)
        opened = open_store(settings.database.url)
        try:
            return load_feed_posts(site.feed_url, opened, now=now, tz=site.tz)
        finally:
            opened.dispose()
    from digest.sources.jekyll.reader import load_posts

    return load_posts(site, include_drafts=include_drafts)


def describe_source(site: SiteSettings) -> str:
    """Where the site's posts are read from, naming the key (for hints)."""
    if site.source == "hugo":
        return f"site.root (the Hugo site {site.root}) and site.sections"
    if site.source == "feed":
        return f"site.feed_url ({site.feed_url})"
    return f"site.posts_dir ({site.posts_dir})"
