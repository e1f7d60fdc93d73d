"""The public archive of sent digests: each run's copy stored once, its links, its Atom feed.

delivery ─► archive (store a run's all-posts copy); web's /archive pages ─► archive (read).
"""

from __future__ import annotations

import html
import re
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from urllib.parse import quote
from xml.etree import ElementTree

from digest.render.renderer import Renderer, digest_title, render_archive_copy
from digest.settings import DigestSettings, Settings
from digest.sources.cleaning import strip_controls
from digest.sources.post import Post
from digest.store import Store, runs
from digest.store.archive import ArchivedRun, is_archived, save_archive

ATOM_NS = "http://www.w3.org/2005/Atom"


_BODY = re.compile(r"<body\b[^>]*>(.*)</body\s*>", re.S | re.I)


def body_fragment(document: str) -> str:
    """What is inside <body> of a whole HTML document (a feed reader shows that, never the
    doctype, head and style); the text as it is when it has no body."""
    found = _BODY.search(document)
    return found.group(1).strip() if found else document


def with_back_link(document: str, url: str, text: str) -> str:
    """The archived email with a link back to the archive at the top of its body."""
    link = (
        '<p style="margin:0;padding:12px 16px;font:14px/20px sans-serif;text-align:left">'
        f'<a href="{html.escape(url, quote=True)}" style="color:#1d5fd6">'
        f"{html.escape(text)}</a></p>"
    )
    return re.sub(r"(<body\b[^>]*>)", lambda m: m.group(1) + link, document, count=1, flags=re.I)


def archive_url(settings: Settings, digest: str, run_id: int) -> str:
    """The public page of one run: base_url/archive/<digest>/<run>."""
    return f"{settings.web.base_url}/archive/{quote(digest, safe='')}/{run_id}"


def feed_url(settings: Settings, digest: str) -> str:
    """The Atom feed of a digest's archive: base_url/archive/<digest>.atom."""
    return f"{settings.web.base_url}/archive/{quote(digest, safe='')}.atom"


def view_in_browser_url(settings: Settings, digest: str, run_id: int) -> str | None:
    """The "View in browser" link of a run's emails: its archive page, when the archive is on."""
    return archive_url(settings, digest, run_id) if settings.web.archive else None


def archive_run(
    store: Store,
    renderer: Renderer,
    digest: DigestSettings,
    run_id: int,
    posts_by_id: Mapping[str, Post],
) -> bool:
    """Store the run's all-posts copy unless it is stored already; True when it is stored.

    Rendered from the run's posts as they are on disk now (the same as its emails), with
    nothing personal: no name, no address, no unsubscribe link.
    """
    if is_archived(store, run_id):
        return True
    with store.session() as session:
        run = runs.get_run(session, run_id)
        if run is None:
            return False
        as_of, post_ids = run.as_of, list(run.post_ids or ())
    posts = [posts_by_id[p] for p in post_ids if p in posts_by_id]
    if not posts:
        return False
    subject, html = render_archive_copy(renderer, digest, posts, as_of=as_of)
    save_archive(store, run_id, digest.name, subject, html)
    return True


def _text(parent: ElementTree.Element, tag: str, text: str, **attrs: str) -> None:
    element = ElementTree.SubElement(parent, f"{{{ATOM_NS}}}{tag}", attrs)
    # XML 1.0 has no control characters: a run stored before posts were cleaned may hold one.
    element.text = strip_controls(text)


def _stamp(when: datetime) -> str:
    return when.isoformat(timespec="seconds")


def atom_feed(settings: Settings, digest: str, archived: Sequence[ArchivedRun]) -> bytes:
    """An Atom (RFC 4287) feed of a digest's archived runs, newest first, as UTF-8 XML."""
    ElementTree.register_namespace("", ATOM_NS)
    feed = ElementTree.Element(f"{{{ATOM_NS}}}feed")
    own = feed_url(settings, digest)
    _text(feed, "id", own)
    config = settings.digests.get(digest)
    title = digest_title(config, settings.site.lang) if config is not None else digest
    _text(feed, "title", f"{settings.site.title} · {title}")
    newest = max((r.created_at for r in archived), default=None)
    _text(feed, "updated", _stamp(newest or datetime.fromtimestamp(0, UTC)))
    ElementTree.SubElement(feed, f"{{{ATOM_NS}}}link", {"rel": "self", "href": own})
    home = f"{settings.web.base_url}/archive"
    ElementTree.SubElement(feed, f"{{{ATOM_NS}}}link", {"rel": "alternate", "href": home})
    author = ElementTree.SubElement(feed, f"{{{ATOM_NS}}}author")
    _text(author, "name", settings.site.title)
    _text(author, "uri", settings.site.root_url + "/")
    for run in archived:
        page = archive_url(settings, digest, run.run_id)
        entry = ElementTree.SubElement(feed, f"{{{ATOM_NS}}}entry")
        _text(entry, "id", page)
        _text(entry, "title", run.subject)
        _text(entry, "published", _stamp(run.as_of))
        _text(entry, "updated", _stamp(run.created_at))
        ElementTree.SubElement(
            entry, f"{{{ATOM_NS}}}link", {"rel": "alternate", "type": "text/html", "href": page}
        )
        if run.html:
            _text(entry, "content", body_fragment(run.html), type="html")
    data: bytes = ElementTree.tostring(feed, encoding="utf-8", xml_declaration=True)
    return data
