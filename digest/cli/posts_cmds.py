"""`digest posts`: the posts that are new for a digest at a time, or every post with --all.

cli door: load settings, make the library calls (load_site_posts, newposts.new_posts), print.
"""

from __future__ import annotations

from datetime import UTC, datetime

import click

from digest.cli.app import (
    State,
    as_of_option,
    echo_json,
    parse_as_of,
    pass_state,
    table_or_json_option,
)
from digest.errors import BadDateError, BadInputError
from digest.selection.newposts import new_posts_in
from digest.settings import DigestSettings, Settings
from digest.sources import load_site_posts
from digest.sources.post import Post


def default_digest(settings: Settings, name: str | None) -> DigestSettings:
    """The digest called `name`; without a name, the first one the config defines."""
    if name:
        return settings.digest(name)
    if not settings.digests:
        raise BadInputError(
            f"{settings.source}: no digests defined",
            hint="add one under `digests:` or use `digest posts --all`",
        )
    return next(iter(settings.digests.values()))


def _bad_date_row(problem: BadDateError) -> dict[str, object]:
    """A `posts --all` JSON row for a post whose date cannot be read."""
    return {
        "id": problem.path,
        "title": problem.title,
        "date": None,
        "categories": [],
        "tags": [],
        "url": problem.url or None,
        "path": problem.path,
        "file": problem.path,
        "status": "bad-date",
        "detail": problem.reason,
    }


def _status(post: Post, as_of: datetime) -> str:
    if post.draft:
        return "draft"
    if not post.published:
        return "unpublished"
    if post.date > as_of:
        return "future"
    return "published"


@click.command("posts")
@click.option(
    "--digest",
    "digest_name",
    metavar="NAME",
    help="The digest (default: the first one in the config).",
)
@as_of_option
@click.option(
    "--all",
    "show_all",
    is_flag=True,
    help="Every post of the site, with its status, not only the new ones.",
)
@click.option(
    "--drafts", is_flag=True, help="With --all: also drafts (_drafts/, Hugo draft pages)."
)
@table_or_json_option
@pass_state
def posts_command(
    state: State, digest_name: str | None, as_of: str | None, show_all: bool, drafts: bool, fmt: str
) -> None:
    """The posts that are new for a digest at time T (every parsed post with --all)."""
    settings = state.settings
    when = parse_as_of(as_of, settings.site.tz)
    digest = None if show_all and not digest_name else default_digest(settings, digest_name)
    now = datetime.now(UTC)
    loaded = load_site_posts(settings, as_of=when, now=now, include_drafts=show_all and drafts)
    for problem in loaded.problems:
        click.echo(f"warning: {problem.path}: {problem.reason}", err=True)

    if show_all:
        chosen = list(loaded.posts)
    else:
        assert digest is not None
        chosen = new_posts_in(settings.database.url, digest, loaded.posts, when)

    # A post whose date cannot be read is listed (never sent), not left out silently.
    undated = [p for p in loaded.problems if isinstance(p, BadDateError)] if show_all else []
    if fmt == "json":
        rows = []
        for post in chosen:
            row = post.as_dict()
            row["status"] = _status(post, when)
            rows.append(row)
        rows.extend(_bad_date_row(problem) for problem in undated)
        echo_json(rows)
        return
    for problem in undated:
        click.echo(f"bad-date  {'-' * 22}  []  {problem.title or problem.path}")
        click.echo(f"    {problem.url or problem.path}")
    if not chosen and not undated:
        what = "posts" if show_all else f"new posts for digest {digest.name if digest else ''}"
        click.echo(f"no {what} as of {when.isoformat(timespec='minutes')}")
        return
    for post in chosen:
        categories = "[" + ", ".join(post.categories) + "]"
        status = f"{_status(post, when)}  " if show_all else ""
        click.echo(f"{status}{post.date:%Y-%m-%d %H:%M %z}  {categories}  {post.title}")
        click.echo(f"    {post.url}")
