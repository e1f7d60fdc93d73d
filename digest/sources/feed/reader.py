"""Read an RSS 2.0, Atom or JSON Feed into `Post` values: a feed as a source of posts.

config ─► sources.feed ─► selection: fetched with sources.fetch, parsed by feedparser (XML) or
json (JSON Feed); an entry is identified by its id (guid, else link), so an edited or re-dated
entry stays the same post; an entry without a date is dated when it was first seen (stored).
"""

from __future__ import annotations

import hashlib
import html
import logging
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo
from email.utils import parsedate_to_datetime
from pathlib import Path
from time import struct_time
from typing import TYPE_CHECKING, Any
from urllib.parse import urljoin, urlsplit
from xml.sax import SAXException

import feedparser
import nh3

from digest.errors import FeedError, PostError
from digest.settings import SiteSettings
from digest.sources import Source
from digest.sources.feed.fetch import MAX_BYTES, MAX_REDIRECTS, TIMEOUT_SECONDS, Fetched, fetch_feed
from digest.sources.guards import MAX_NESTING, LimitError, load_json, prune_json
from digest.sources.post import Post, PostsLoad
from digest.store.feeds import first_seen, save_fetch, saved_fetch

if TYPE_CHECKING:
    from digest.store import Store

log = logging.getLogger(__name__)

# sent_posts.post_id holds 512 characters; longer ids are kept as their hash.
MAX_ID_LENGTH = 500
_URL_SCHEMES = {"http", "https", "mailto"}
_YEAR = re.compile(r"\b(\d{4})\b")
_BLANK_LINES = re.compile(r"\n\s*\n+")
# What stands in for a JSON Feed item nested too deep (an item is an object, never this text).
_TOO_DEEP = "\x00digest: nested too deep"


@dataclass(frozen=True)
class FeedEntry:
    """One entry of a feed, before it becomes a Post (date None: the feed gave none)."""

    id: str
    title: str
    link: str
    date: datetime | None
    categories: tuple[str, ...]
    author: str | None
    summary_html: str
    image: str | None


def read_feed(body: bytes, url: str) -> tuple[list[FeedEntry], list[PostError]]:
    """The entries of an RSS, Atom or JSON Feed document, and a problem for each entry that
    was refused (a JSON Feed item nested too deep); FeedError if it is no feed at all."""
    if body.lstrip()[:1] in (b"{", b"["):
        return _json_feed(body, url)
    parsed = feedparser.parse(
        body, response_headers={"content-location": url}, resolve_relative_uris=False
    )
    problem = parsed.get("bozo_exception")
    if isinstance(problem, SAXException):
        # Malformed XML: feedparser's loose parser would guess; a half-read feed is not used.
        reason = problem.getMessage()
        raise FeedError(f"feed {url}: not a valid RSS or Atom feed ({_first_line(reason)})")
    if not parsed.get("version"):
        raise FeedError(f"feed {url}: not an RSS, Atom or JSON feed")
    return [_xml_entry(entry, url) for entry in parsed.get("entries", [])], []


def _xml_entry(entry: dict[str, Any], feed_url: str) -> FeedEntry:
    # dict.get: feedparser's own get() maps updated <-> published with a warning.
    def field(key: str) -> Any:
        return dict.get(entry, key)

    link = urljoin(feed_url, str(field("link") or "").strip())
    summary = field("summary")
    if not summary and field("content"):
        summary = field("content")[0].get("value")
    date = _entry_date(field("published"), field("published_parsed"))
    if date is None:
        date = _entry_date(field("updated"), field("updated_parsed"))
    terms = [tag.get("term") or tag.get("label") for tag in field("tags") or []]
    image = None
    for media in field("media_content") or field("media_thumbnail") or []:
        image = media.get("url") or image
    return FeedEntry(
        id=_identity(str(field("id") or "").strip(), link),
        title=_plain(str(field("title") or "")),
        link=link,
        date=date,
        categories=_unique(terms),
        author=_plain(str(field("author") or "")) or None,
        summary_html=str(summary or ""),
        image=image,
    )


def _json_feed(body: bytes, url: str) -> tuple[list[FeedEntry], list[PostError]]:
    text: str | bytes = body
    try:
        if body.count(b"[") + body.count(b"{") > MAX_NESTING:
            # An item nested too deep is cut out (one warning), not the whole feed.
            text, _count = prune_json(body.decode("utf-8-sig"), 3, _TOO_DEEP)
        document = load_json(text)
    except LimitError as exc:
        raise FeedError(f"feed {url}: refused: {exc}") from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise FeedError(f"feed {url}: not valid JSON ({_first_line(exc)})") from exc
    version = document.get("version", "") if isinstance(document, dict) else ""
    if not str(version).startswith("https://jsonfeed.org/version/"):
        raise FeedError(f"feed {url}: JSON without a JSON Feed version (jsonfeed.org)")
    items = document.get("items")
    if not isinstance(items, list):
        raise FeedError(f"feed {url}: JSON Feed without an `items` list")
    entries = []
    problems = []
    for number, item in enumerate(items, 1):
        if item == _TOO_DEEP:
            reason = f"item {number} nested more than {MAX_NESTING} levels deep; skipped"
            problems.append(PostError(url, reason))
            continue
        if not isinstance(item, dict):
            log.warning("feed %s: item %d is not an object: left out", url, number)
            continue
        fields = _Fields(item)
        entries.append(_json_entry(fields, url))
        if fields.wrong:
            # One warning per entry, naming every field it had to leave out.
            log.warning(
                "feed %s: entry %s: %s of the wrong type, left out",
                url,
                entries[-1].id or number,
                ", ".join(fields.wrong),
            )
    return entries, problems


class _Fields:
    """An item's fields, each checked for its JSON Feed type; a wrong one reads as absent."""

    def __init__(self, item: dict[str, Any]) -> None:
        self.item = item
        self.wrong: list[str] = []

    def text(self, key: str, *, number: bool = False) -> str:
        value = self.item.get(key)
        if value is None:
            return ""
        if isinstance(value, str):
            return value
        if number and isinstance(value, int | float) and not isinstance(value, bool):
            return str(value)  # JSON Feed: an id that is a number is taken as its text
        self._wrong(key, value)
        return ""

    def texts(self, key: str) -> list[str]:
        value = self.item.get(key)
        if value is None:
            return []
        if isinstance(value, list) and all(isinstance(v, str) for v in value):
            return list(value)
        self._wrong(key, value)
        return [v for v in value if isinstance(v, str)] if isinstance(value, list) else []

    def names(self) -> list[str]:
        """The authors' names (JSON Feed 1.1 `authors`, 1.0 `author`)."""
        authors = self.item.get("authors")
        if authors is None and self.item.get("author") is not None:
            authors = [self.item["author"]]
        if authors is None:
            return []
        if not isinstance(authors, list):
            self._wrong("authors", authors)
            return []
        names = [a.get("name") for a in authors if isinstance(a, dict)]
        if len(names) != len(authors) or not all(isinstance(n, str | None) for n in names):
            self._wrong("authors", authors)
        return [n for n in names if isinstance(n, str) and n]

    def _wrong(self, key: str, value: object) -> None:
        kind = {dict: "an object", list: "a list", bool: "true/false", str: "a text"}.get(
            type(value), "a number"
        )
        self.wrong.append(f"{key} ({kind})")


def _json_entry(fields: _Fields, url: str) -> FeedEntry:
    link = urljoin(url, (fields.text("url") or fields.text("external_url")).strip())
    summary = fields.text("summary")
    summary_html = (
        html.escape(summary)
        if summary
        else fields.text("content_html") or html.escape(fields.text("content_text"))
    )
    published = fields.text("date_published") or fields.text("date_modified")
    return FeedEntry(
        id=_identity(fields.text("id", number=True).strip(), link),
        title=_plain(fields.text("title")),
        link=link,
        date=_entry_date(published, None),
        categories=_unique(fields.texts("tags")),
        author=", ".join(fields.names()) or None,
        summary_html=summary_html,
        image=fields.text("image") or fields.text("banner_image") or None,
    )


def _identity(entry_id: str, link: str) -> str:
    identity = entry_id or link
    if len(identity) > MAX_ID_LENGTH:
        return "sha256:" + hashlib.sha256(identity.encode("utf-8")).hexdigest()
    return identity


def _entry_date(text: object, parsed: object) -> datetime | None:
    """The entry's date keeping its offset (RFC 822 or ISO 8601); None for none or Hugo's 0001."""
    if isinstance(text, str) and text.strip():
        year = _YEAR.search(text)
        if year and int(year.group(1)) < 1900:
            return None  # Hugo writes its zero date as 0001-01-01
        value = text.strip()
        try:
            return _aware(datetime.fromisoformat(value.replace("Z", "+00:00")))
        except ValueError:
            pass
        try:
            return _aware(parsedate_to_datetime(value))
        except (TypeError, ValueError, IndexError):
            pass
    if isinstance(parsed, struct_time) and parsed.tm_year >= 1900:
        return datetime(*parsed[:6], tzinfo=UTC)
    return None


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def _plain(text: str) -> str:
    return " ".join(html.unescape(nh3.clean(text, tags=set())).split())


def _unique(names: Sequence[object]) -> tuple[str, ...]:
    cleaned = (" ".join(str(n).split()) for n in names if n is not None)
    return tuple(dict.fromkeys(n for n in cleaned if n))


def _first_line(reason: object) -> str:
    return str(reason).strip().splitlines()[0] if str(reason).strip() else "unreadable"


def sanitise(summary_html: str, base: str) -> str:
    """Entry HTML made safe (nh3) with its relative links resolved against the entry's link;
    one HTML block, so the excerpt renderer (Markdown with HTML) keeps it as it is."""

    def absolute(_tag: str, attribute: str, value: str) -> str | None:
        if attribute not in ("href", "src"):
            return value
        joined = urljoin(base, value.strip())
        return joined if urlsplit(joined).scheme.lower() in _URL_SCHEMES else None

    cleaned = nh3.clean(
        summary_html,
        attribute_filter=absolute,
        url_schemes=_URL_SCHEMES,
        link_rel="noopener",
        clean_content_tags={"script", "style"},
    ).strip()
    if not cleaned:
        return ""
    return "<div>" + _BLANK_LINES.sub("\n", cleaned) + "</div>"


def entry_post(entry: FeedEntry, date: datetime, tz: tzinfo) -> Post:
    """The Post of a feed entry; `date` is its own or, for an undated entry, when first seen."""
    slug = Path(urlsplit(entry.link).path.rstrip("/")).name or entry.id
    return Post(
        id=entry.id,
        # A feed entry has no source file: its path on the site stands in (JSON `file`).
        path=Path(urlsplit(entry.link).path or "/"),
        title=entry.title or slug,
        date=date.astimezone(tz),
        slug=slug,
        categories=entry.categories,
        tags=(),
        author=entry.author,
        excerpt=sanitise(entry.summary_html, entry.link or entry.id),
        content=entry.summary_html,
        image=urljoin(entry.link, entry.image) if entry.image else None,
        url=entry.link,
        published=True,
        draft=False,
    )


class FeedSource(Source):
    """An RSS, Atom or JSON feed (`site.feed_url`): a URL or a file."""

    def __init__(
        self, site: SiteSettings, *, store: Store | None = None, database_url: str | None = None
    ) -> None:
        assert site.feed_url is not None  # config checks it
        self.site = site
        self.feed_url = site.feed_url
        self.store = store
        self.database_url = database_url

    def load(
        self, *, as_of: datetime, now: datetime | None = None, include_drafts: bool = False
    ) -> PostsLoad:
        when = as_of if now is None else now
        if self.store is not None or self.database_url is None:
            return load_feed_posts(self.feed_url, self.store, now=when, tz=self.site.tz)
        from digest.store import open_store

        opened = open_store(self.database_url)
        try:
            return load_feed_posts(self.feed_url, opened, now=when, tz=self.site.tz)
        finally:
            opened.dispose()

    def describe(self) -> str:
        return f"site.feed_url ({self.feed_url})"


def load_feed_posts(
    feed_url: str,
    store: Store | None,
    *,
    now: datetime,
    tz: tzinfo,
    timeout: float = TIMEOUT_SECONDS,
    max_bytes: int = MAX_BYTES,
    max_redirects: int = MAX_REDIRECTS,
) -> PostsLoad:
    """Fetch (conditionally) and read the feed; remember its validators and undated entries.

    Without a store (a preview before the database exists) the fetch is plain and an undated
    entry is dated `now`.
    """
    saved = None
    if store is not None:
        with store.session() as session:
            saved = saved_fetch(session, feed_url)
    fetched: Fetched = fetch_feed(
        feed_url,
        etag=saved.etag if saved else None,
        last_modified=saved.last_modified if saved else None,
        timeout=timeout,
        max_bytes=max_bytes,
        max_redirects=max_redirects,
    )
    if fetched.not_modified:
        if saved is None or saved.body is None:
            raise FeedError(f"feed {feed_url}: 304 Not Modified, but no earlier copy is stored")
        log.debug("feed %s not modified since %s", feed_url, saved.fetched_at)
        body = saved.body
    else:
        assert fetched.body is not None
        body = fetched.body
    entries, problems = read_feed(body, fetched.url)
    undated = [e.id for e in entries if e.date is None]
    seen: Mapping[str, datetime] = {}
    if store is not None:
        # Only a feed that parsed is remembered: a failed fetch leaves the last good one.
        with store.session() as session:
            if not fetched.not_modified:
                save_fetch(
                    session,
                    feed_url,
                    etag=fetched.etag,
                    last_modified=fetched.last_modified,
                    body=body,
                    fetched_at=now,
                )
            if undated:
                seen = first_seen(session, feed_url, undated, now.astimezone(UTC))
    posts = [entry_post(e, e.date or seen.get(e.id, now), tz) for e in entries]
    unique = list({post.id: post for post in reversed(posts)}.values())  # first of a duplicate id
    unique.sort(key=lambda p: p.id)
    unique.sort(key=lambda p: p.date, reverse=True)
    return PostsLoad(tuple(unique), tuple(problems))
