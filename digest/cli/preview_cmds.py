"""`digest preview`: render a digest as it would go out, without sending or recording anything.

cli ─► posts, selection, render (and the store read-only for sent posts and a subscriber).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import click

from digest.cli.app import State, as_of_option, parse_as_of, pass_state
from digest.config import Settings
from digest.errors import BadInputError, ConfigError, NotFoundError
from digest.posts import Post, load_posts
from digest.render import RenderedSegment, Renderer
from digest.selection import latest_posts, select_new, share_for

SAMPLE_EMAIL = "you@example.com"


@dataclass(frozen=True)
class PreviewSubscriber:
    """Who the preview is personalised for."""

    id: int | None
    email: str
    name: str
    categories: tuple[str, ...]


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


def _from_store(
    settings: Settings, name: str, email: str | None
) -> tuple[set[str], PreviewSubscriber | None]:
    """Sent post ids of `name` and the subscriber with `email`; reads only."""
    url = settings.database.url
    if _sqlite_missing(url):
        if email:
            raise NotFoundError(f"no subscriber {email!r}: the database {url} does not exist yet")
        return set(), None
    from digest.store import open_store
    from digest.store.outbox import sent_post_ids
    from digest.store.subscribers import find_subscriber

    store = open_store(url)
    try:
        with store.session() as session:
            sent = set(sent_post_ids(session, name))
        subscriber = None
        if email:
            row = find_subscriber(store, email)
            if row is None:
                raise NotFoundError(f"no subscriber {email.strip()!r} in the database")
            subscriber = PreviewSubscriber(row.id, row.email, row.name, tuple(row.categories))
        return sent, subscriber
    finally:
        store.dispose()


def _unsubscribe_url(settings: Settings, name: str, subscriber: PreviewSubscriber | None) -> str:
    """A real signed link for a real subscriber when a secret is set; else a sample one."""
    sample = f"{settings.web.base_url}/unsubscribe/preview"
    if subscriber is None or subscriber.id is None:
        return sample
    if not settings.web.secret.get_secret_value():
        return sample
    from digest.tokens import unsubscribe_url

    try:
        return unsubscribe_url(settings, subscriber.id, name)
    except ConfigError:  # a weak secret: the preview still shows where the link goes
        return sample


def build_preview(
    settings: Settings, name: str, *, as_of: datetime, subscriber_email: str | None = None
) -> Preview:
    """The digest `name` as it would go out at `as_of` (falling back to the latest posts)."""
    digest = settings.digest(name)
    loaded = load_posts(settings.site)
    notes = [f"warning: {problem.message}" for problem in loaded.problems]
    sent, subscriber = _from_store(settings, name, subscriber_email)
    categories = subscriber.categories if subscriber else ()

    posts = share_for(select_new(loaded.posts, digest, as_of, sent), categories)
    if not posts:
        posts = share_for(
            latest_posts(loaded.posts, digest, as_of, limit=len(loaded.posts)), categories
        )[: digest.max_posts]
        if not posts:
            whose = f" for {subscriber.email}" if subscriber else ""
            notes.append(f"no posts{whose} in {name} as of {as_of.isoformat()}; nothing to preview")
            return Preview(posts=[], segment=None, notes=notes)
        notes.append(
            f"note: nothing new for {name} as of {as_of.isoformat()}; "
            f"previewing the latest {len(posts)} post{'' if len(posts) == 1 else 's'}"
        )

    renderer = Renderer(settings)
    segment = renderer.render_segment(digest, posts, as_of=as_of)
    html, text = renderer.personalise(
        segment,
        name=subscriber.name if subscriber else "",
        email=subscriber.email if subscriber else SAMPLE_EMAIL,
        unsubscribe_url=_unsubscribe_url(settings, name, subscriber),
        categories=subscriber.categories if subscriber else (),
    )
    return Preview(posts=posts, segment=segment, html=html, text=text, notes=notes)


@click.command("preview")
@click.argument("name")
@as_of_option
@click.option(
    "--subscriber",
    "subscriber_email",
    metavar="EMAIL",
    help="Personalise for this subscriber and show only their share (their categories).",
)
@click.option(
    "--out",
    type=click.Path(dir_okay=False, writable=True, path_type=Path),
    help="Write to FILE instead of standard output.",
)
@click.option("--text", "as_text", is_flag=True, help="The text/plain part instead of the HTML.")
@pass_state
def preview(
    state: State,
    name: str,
    as_of: str | None,
    subscriber_email: str | None,
    out: Path | None,
    as_text: bool,
) -> None:
    """Render digest NAME (inlined HTML, or the text part) without sending or recording anything.

    When nothing is new it shows the latest posts instead, with a note on stderr.
    """
    settings = state.settings
    settings.digest(name)  # an unknown name fails before any work
    when = parse_as_of(as_of, settings.site.tz)
    result = build_preview(settings, name, as_of=when, subscriber_email=subscriber_email)
    for note in result.notes:
        click.echo(note, err=True)
    if result.segment is None:
        return
    body = result.text if as_text else result.html
    if out is None:
        click.echo(body, nl=not body.endswith("\n"))
        return
    try:
        out.write_text(body, encoding="utf-8")
    except OSError as exc:
        raise BadInputError(f"{out}: cannot write the preview: {exc.strerror or exc}") from exc
    size = len(body.encode("utf-8"))
    click.echo(
        f"wrote {out} ({'text' if as_text else 'html'}, {size:,} bytes, "
        f"{len(result.posts)} post{'' if len(result.posts) == 1 else 's'}): "
        f"{result.segment.subject}"
    )
