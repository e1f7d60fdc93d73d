"""The archive pages of `digest serve`: /archive, /archive/<digest>/<run>, /archive/<digest>.atom.

web's routes send these paths here; the stored copies come from digest.archive (404 when off).
"""

from __future__ import annotations

import html
import re

from digest.archive import archive_url, atom_feed, feed_url
from digest.i18n import format_date, text_direction
from digest.store.archive import archived_run, archived_runs
from digest.web.forms import Request
from digest.web.handlers import WebContext
from digest.web.pages import HttpError, Response

_NAME = r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}"
ARCHIVE_INDEX = re.compile(r"^/archive/?$")
ARCHIVE_RUN = re.compile(rf"^/archive/(?P<digest>{_NAME})/(?P<run>[0-9]{{1,12}})/?$")
ARCHIVE_FEED = re.compile(rf"^/archive/(?P<digest>{_NAME})\.atom$")
FEED_ENTRIES = 20  # the newest runs in a feed, each with its whole email


def _not_found() -> HttpError:
    return HttpError(404, "Not found", "There is no page at this address.")


def _archive_path(context: WebContext, pattern: re.Pattern[str], request: Request) -> re.Match[str]:
    """The path's match, if the archive is on and the config has its digest; else 404."""
    path = str(request.environ.get("PATH_INFO", ""))
    match = pattern.match(path) if context.settings.web.archive else None
    if match is None or match.group("digest") not in context.settings.digests:
        raise _not_found()
    return match


def archive_index(context: WebContext, request: Request) -> Response:
    """GET /archive: each digest's past runs, newest first, with links to them and the feed."""
    settings = context.settings
    if not settings.web.archive:
        raise _not_found()
    lang, e = settings.site.lang, html.escape
    sections = []
    for name in settings.digests:
        items = "".join(
            f'<li><a href="{e(archive_url(settings, name, run.run_id))}">{e(run.subject)}</a>'
            f" <small>{e(format_date(run.as_of, lang, settings.site.tz))}</small></li>"
            for run in archived_runs(context.store, name)
        )
        sections.append(
            f"<h2>{e(name)}</h2>"
            f'<p><a href="{e(feed_url(settings, name))}">Atom</a></p>'
            f"<ul>{items}</ul>"
        )
    title = e(settings.site.title)
    body = (
        f'<!doctype html><html lang="{e(lang)}" dir="{text_direction(lang)}"><head>'
        '<meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">'
        f"<title>{title}</title>"
        "<style>body{font-family:system-ui,sans-serif;max-width:40rem;margin:2rem auto;"
        "padding:0 1rem;color:#111827}li{margin:.4rem 0}small{color:#6b7280}</style></head>"
        f'<body><h1><a href="{e(settings.site.root_url)}/">{title}</a></h1>'
        f"{''.join(sections)}</body></html>"
    )
    return Response(200, body.encode("utf-8"))


def archive_page(context: WebContext, request: Request) -> Response:
    """GET /archive/<digest>/<run>: the run's stored email, as its subscribers got it."""
    match = _archive_path(context, ARCHIVE_RUN, request)
    run = archived_run(context.store, match.group("digest"), int(match.group("run")))
    if run is None:
        raise _not_found()
    return Response(200, run.html.encode("utf-8"))


def archive_feed(context: WebContext, request: Request) -> Response:
    """GET /archive/<digest>.atom: an Atom feed of the digest's newest runs."""
    name = _archive_path(context, ARCHIVE_FEED, request).group("digest")
    newest = archived_runs(context.store, name)[:FEED_ENTRIES]
    full = [archived_run(context.store, name, run.run_id) or run for run in newest]
    body = atom_feed(context.settings, name, full)
    return Response(200, body, "application/atom+xml; charset=utf-8")
