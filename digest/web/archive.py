"""The archive pages of `digest serve`: /archive, /archive/<digest>/<run>, /archive/<digest>.atom.

web's routes send these paths here; the stored copies come from digest.archive (404 when off).
"""

from __future__ import annotations

from digest.archive import archive_url, atom_feed, feed_url, with_back_link
from digest.i18n import format_date
from digest.store.archive import archived_run, archived_runs
from digest.web.context import WebContext
from digest.web.forms import Request
from digest.web.pages import ARCHIVE_CSP, Response, not_found

# A digest's name in an archive path (the route table's converter): no dot, so `.atom` parses.
DIGEST_NAME = r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}"
TEMPLATE = "web/archive.html.j2"
FEED_ENTRIES = 20  # the newest runs in a feed, each with its whole email


def _archived_digest(context: WebContext, request: Request) -> str:
    """The path's digest, if the archive is on and the config has the digest; else 404."""
    name = request.path_values.get("digest", "")
    if not context.settings.web.archive or name not in context.settings.digests:
        raise not_found()
    return name


def archive_index(context: WebContext, request: Request) -> Response:
    """GET /archive: each digest's past runs, newest first, with links to them and the feed."""
    settings = context.settings
    if not settings.web.archive:
        raise not_found()
    site = settings.site
    digests = [
        {
            "title": context.digest_title(name),
            "feed_url": feed_url(settings, name),
            "runs": [
                (
                    archive_url(settings, name, run.run_id),
                    run.subject,
                    format_date(run.as_of, site.lang, site.tz),
                )
                for run in archived_runs(context.store, name)
            ],
        }
        for name in context.digest_names
    ]
    return context.shell.render(200, TEMPLATE, {"digests": digests})


def archive_page(context: WebContext, request: Request) -> Response:
    """GET /archive/<digest>/<run>: the run's stored email, as its subscribers got it."""
    name = _archived_digest(context, request)
    run = archived_run(context.store, name, int(request.path_values.get("run", "0")))
    if run is None:
        raise not_found()
    # A way back to the list of issues, where a reader of the page looks for one.
    back = f"{context.settings.web.base_url}/archive"
    page = with_back_link(run.html, back, context.gettext("← All issues"))
    # The email's images load here (img-src); everything else stays as strict as on any page.
    return Response(200, page.encode("utf-8"), headers=[("Content-Security-Policy", ARCHIVE_CSP)])


def archive_feed(context: WebContext, request: Request) -> Response:
    """GET /archive/<digest>.atom: an Atom feed of the digest's newest runs."""
    name = _archived_digest(context, request)
    newest = archived_runs(context.store, name)[:FEED_ENTRIES]
    full = [archived_run(context.store, name, run.run_id) or run for run in newest]
    body = atom_feed(context.settings, name, full)
    return Response(200, body, "application/atom+xml; charset=utf-8")
