"""A digest rendered as it would go out, for a subscriber or a sample one; records nothing.

posts, newposts, render (and the store read-only for sent posts and a subscriber) ─► cli preview.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from digest.errors import ConfigError, NotFoundError
from digest.render.renderer import RenderedSegment, Renderer
from digest.selection.newposts import posts_to_show
from digest.settings import Settings
from digest.sources import load_site_posts
from digest.sources.post import Post
from digest.store import Store, masked_url, open_store, runs
from digest.store.subscribers import find_subscriber
from digest.tokens import preferences_url, unsubscribe_url

SAMPLE_EMAIL = "you@example.com"


@dataclass(frozen=True)
class PreviewSubscriber:
    """Who the preview is personalised for."""

    id: int | None
    email: str
    name: str
    categories: tuple[str, ...]
    link_key: str = ""


@dataclass
class Preview:
    """A rendered, personalised digest and what a user should be told about it."""

    posts: list[Post]
    segment: RenderedSegment | None
    html: str = ""
    text: str = ""
    notes: list[str] = field(default_factory=list)


def _sqlite_missing(url: str) -> bool:
    """True for an SQLite URL whose file does not exist yet (nothing sent, nobody subscribed)."""
    prefix = "sqlite:///"
    if not url.startswith(prefix):
        return False
    path = url[len(prefix) :].split("?", 1)[0]
    return bool(path) and path != ":memory:" and not Path(path).exists()


def _find_subscriber(store: Store, email: str) -> PreviewSubscriber:
    row = find_subscriber(store, email)
    if row is None:
        raise NotFoundError(f"no subscriber {email.strip()!r} in the database")
    return PreviewSubscriber(row.id, row.email, row.name, tuple(row.categories), row.link_key)


def _unsubscribe_url(settings: Settings, name: str, subscriber: PreviewSubscriber | None) -> str:
    """A real signed link for a real subscriber when a secret is set; else a sample one."""
    sample = f"{settings.web.base_url}/unsubscribe/preview"
    if subscriber is None or subscriber.id is None:
        return sample
    if not settings.web.secret.get_secret_value():
        return sample
    try:
        return unsubscribe_url(settings, subscriber.id, name, subscriber.link_key)
    except ConfigError:  # a weak secret: the preview still shows where the link goes
        return sample


def _preferences_url(settings: Settings, subscriber: PreviewSubscriber | None) -> str | None:
    """A real signed preferences link for a real subscriber when a secret is set; else None."""
    if subscriber is None or subscriber.id is None or not subscriber.link_key:
        return None
    try:
        return preferences_url(settings, subscriber.id, subscriber.link_key)
    except ConfigError:  # no or a weak secret: the preview shows a sample link
        return None


def _render(
    settings: Settings,
    name: str,
    posts: list[Post],
    as_of: datetime,
    subscriber: PreviewSubscriber | None,
    *,
    since: datetime | None = None,
    latest: bool = False,
) -> Preview:
    digest = settings.digest(name)
    renderer = Renderer(settings)
    segment = renderer.render_segment(digest, posts, as_of=as_of, since=since, latest=latest)
    html, text = renderer.personalise(
        segment,
        name=subscriber.name if subscriber else "",
        email=subscriber.email if subscriber else SAMPLE_EMAIL,
        unsubscribe_url=_unsubscribe_url(settings, name, subscriber),
        categories=subscriber.categories if subscriber else (),
        preferences_url=_preferences_url(settings, subscriber),
    )
    notes = []
    if segment.shortened is not None:
        notes.append(
            f"note: html part {len(html.encode('utf-8')):,} bytes; {segment.shortened.describe()}"
        )
    return Preview(posts=posts, segment=segment, html=html, text=text, notes=notes)


def build_preview(
    settings: Settings, name: str, *, as_of: datetime, subscriber_email: str | None = None
) -> Preview:
    """The digest `name` as it would go out at `as_of` (falling back to the latest posts).

    Reads the database only if it exists: a preview never creates one.
    """
    digest = settings.digest(name)
    url = settings.database.url
    store: Store | None = None
    subscriber: PreviewSubscriber | None = None
    if _sqlite_missing(url):
        if subscriber_email:
            raise NotFoundError(
                f"no subscriber {subscriber_email!r}: "
                f"the database {masked_url(url)} does not exist yet"
            )
    else:
        store = open_store(url)
    try:
        now = datetime.now(UTC)
        loaded = load_site_posts(settings, as_of=as_of, now=now, store=store, remember=False)
        notes = [f"warning: {problem.message}" for problem in loaded.problems]
        if store is not None and subscriber_email:
            subscriber = _find_subscriber(store, subscriber_email)
        categories = subscriber.categories if subscriber else ()
        shown = posts_to_show(store, digest, loaded.posts, as_of, categories=categories)
        since = None
        if store is not None:
            with store.session() as session:
                since = runs.previous_edition(session, name, as_of)
    finally:
        if store is not None:
            store.dispose()

    posts = shown.posts
    if not posts:
        whose = f" for {subscriber.email}" if subscriber else ""
        notes.append(f"no posts{whose} in {name} as of {as_of.isoformat()}; nothing to preview")
        return Preview(posts=[], segment=None, notes=notes)
    if shown.latest:
        notes.append(
            f"note: nothing new for {name} as of {as_of.isoformat()}; "
            f"previewing the latest {len(posts)} post{'' if len(posts) == 1 else 's'}"
        )
    preview = _render(settings, name, posts, as_of, subscriber, since=since, latest=shown.latest)
    preview.notes = notes + preview.notes
    return preview
