"""Feeds as a source: RSS 2.0 (as Hugo writes it), Atom (as jekyll-feed writes it) and JSON Feed,
served by a real HTTP server on loopback, with the state kept in a real database.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from digest.errors import FeedError
from digest.sources.feed.fetch import fetch_feed
from digest.sources.feed.reader import load_feed_posts, read_feed
from digest.store import Store, open_store
from digest.store.feeds import saved_fetch
from tests.conftest import sqlite_only
from tests.helpers import realsites
from tests.helpers.feed_server import FeedServer, Route, feed_server

DATA = Path(__file__).parents[1] / "data" / "feeds"
FEEDS = realsites.REALSITES / "feeds"
REAL_FEEDS = sorted(p.stem for p in FEEDS.glob("*.xml")) if FEEDS.is_dir() else []
NOW = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)
LONDON = ZoneInfo("Europe/London")


@pytest.fixture
def server() -> Iterator[FeedServer]:
    with feed_server() as running:
        yield running


def _load(url: str, store: Store, now: datetime = NOW, **limits: float) -> dict[str, object]:
    loaded = load_feed_posts(url, store, now=now, tz=LONDON, **limits)
    return {post.id: post for post in loaded.posts}


@sqlite_only
def test_rss_as_hugo_writes_it(server: FeedServer, store: Store) -> None:
    server.routes["/index.xml"] = Route((DATA / "hugo-rss.xml").read_bytes())
    loaded = load_feed_posts(server.url("/index.xml"), store, now=NOW, tz=LONDON)
    posts = {p.id: p for p in loaded.posts}
    second = posts["https://example.org/posts/second/"]
    assert second.title == "Second post & more"
    assert second.date == datetime(2026, 11, 27, 14, 0, tzinfo=UTC)
    assert second.categories == ("News",)
    assert second.url == "https://example.org/posts/second/"
    # Relative links resolved against the entry's link; the script is gone.
    assert 'href="https://example.org/posts/first/"' in second.excerpt
    assert 'src="https://example.org/posts/second/cat.png"' in second.excerpt
    assert "script" not in second.excerpt and "alert" not in second.excerpt
    # Hugo's zero date: the entry is dated when first seen.
    assert posts["https://example.org/about/"].date == NOW
    assert loaded.posts[0].id == "https://example.org/about/"


@sqlite_only
def test_atom_as_jekyll_feed_writes_it(server: FeedServer, store: Store) -> None:
    server.routes["/feed.xml"] = Route(
        (DATA / "jekyll-atom.xml").read_bytes(), content_type="application/atom+xml"
    )
    posts = _load(server.url("/feed.xml"), store)
    release = posts["https://blog.example.com/release/2026/11/26/release-2"]
    assert release.title == "Release 2.0 & friends"  # type: ignore[attr-defined]
    assert release.date.isoformat() == "2026-11-26T11:00:00+00:00"  # type: ignore[attr-defined]
    assert release.categories == ("release", "News")  # type: ignore[attr-defined]
    assert release.author == "Ada"  # type: ignore[attr-defined]
    excerpt = release.excerpt  # type: ignore[attr-defined]
    assert "The short summary" in excerpt
    assert 'href="https://blog.example.com/docs/"' in excerpt
    welcome = posts["https://blog.example.com/2026/11/20/welcome"]
    assert welcome.date.isoformat() == "2026-11-20T08:00:00+00:00"  # type: ignore[attr-defined]


@sqlite_only
def test_json_feed(server: FeedServer, store: Store) -> None:
    server.routes["/feed.json"] = Route(
        (DATA / "feed.json").read_bytes(), content_type="application/feed+json"
    )
    posts = _load(server.url("/feed.json"), store)
    two = posts["tag:json.example.net,2026:2"]
    assert two.categories == ("Notes", "notes")  # type: ignore[attr-defined]
    assert two.author == "Grace"  # type: ignore[attr-defined]
    assert 'href="https://json.example.net/2026/11/two/img/"' in two.excerpt  # type: ignore[attr-defined]
    one = posts["tag:json.example.net,2026:1"]
    assert one.date == NOW  # type: ignore[attr-defined]
    assert "A plain &lt;summary&gt;." in one.excerpt  # type: ignore[attr-defined]


def test_a_304_reuses_the_stored_copy_and_undated_entries_keep_their_first_seen_date(
    server: FeedServer, store: Store
) -> None:
    server.routes["/index.xml"] = Route((DATA / "hugo-rss.xml").read_bytes(), etag='"v1"')
    url = server.url("/index.xml")
    first = _load(url, store)
    later = NOW + timedelta(days=3)
    second = _load(url, store, now=later)
    assert server.requests[-1][1]["if-none-match"] == '"v1"'
    assert list(second) == list(first)
    assert second["https://example.org/about/"].date == NOW  # type: ignore[attr-defined]


def test_an_edited_and_redated_entry_keeps_its_identity(server: FeedServer, store: Store) -> None:
    original = (DATA / "hugo-rss.xml").read_bytes()
    server.routes["/index.xml"] = Route(original, etag='"v1"')
    url = server.url("/index.xml")
    before = _load(url, store)
    edited = original.replace(b"Second post &amp; more", b"Second post, edited").replace(
        b"Fri, 27 Nov 2026 09:00:00 -0500", b"Sat, 28 Nov 2026 10:00:00 -0500"
    )
    server.routes["/index.xml"] = Route(edited, etag='"v2"')
    after = _load(url, store)
    assert set(after) == set(before)
    moved = after["https://example.org/posts/second/"]
    assert moved.title == "Second post, edited"  # type: ignore[attr-defined]
    assert moved.date == datetime(2026, 11, 28, 15, 0, tzinfo=UTC)  # type: ignore[attr-defined]


@sqlite_only
@pytest.mark.parametrize(
    ("route", "message"),
    [
        (Route(b"x" * 5000), "larger than the 2 KiB limit"),
        (Route(b"x" * 5000, send_length=False), "larger than the 2 KiB limit"),
        (Route(b"oops", status=500), "HTTP 500 Internal Server Error"),
        (Route(b"<rss><channel><item>"), "not a valid RSS or Atom feed (no element found)"),
        (Route(b"<html><body>Hello</body></html>"), "not an RSS, Atom or JSON feed"),
        (Route(b"{}"), "JSON without a JSON Feed version (jsonfeed.org)"),
        pytest.param(
            Route(b"", delay=2.0),
            "no complete answer within 0.5 seconds",
            marks=pytest.mark.slow,  # waits on a real timer
        ),
        (Route(b"", status=302, location="/loop"), "more than 5 redirects"),
    ],
)
def test_a_feed_that_cannot_be_used_is_one_clear_error_and_changes_nothing(
    server: FeedServer, store: Store, route: Route, message: str
) -> None:
    good = Route((DATA / "hugo-rss.xml").read_bytes(), etag='"v1"')
    server.routes["/loop"] = good
    url = server.url("/loop")
    _load(url, store)
    server.routes["/loop"] = route
    with pytest.raises(FeedError) as caught:
        load_feed_posts(url, store, now=NOW, tz=LONDON, timeout=0.5, max_bytes=2048)
    assert str(caught.value) == f"feed {url}: {message}"
    assert "\n" not in str(caught.value)
    assert caught.value.exit_code == 1
    with store.session() as session:
        saved = saved_fetch(session, url)
    assert saved is not None and saved.etag == '"v1"' and saved.body == good.body


def test_unreachable_feed_and_missing_file(tmp_path: Path) -> None:
    with feed_server() as stopped:
        url = stopped.url("/gone.xml")
    with pytest.raises(FeedError, match=r"^feed http://127\.0\.0\.1:\d+/gone\.xml: cannot connect"):
        fetch_feed(url, timeout=2)
    with pytest.raises(FeedError, match=r"missing\.xml: cannot read: No such file"):
        fetch_feed(str(tmp_path / "missing.xml"))


def test_a_feed_file(migrated_sqlite_url: str) -> None:
    store = open_store(migrated_sqlite_url)
    try:
        loaded = load_feed_posts(str(DATA / "feed.json"), store, now=NOW, tz=LONDON)
    finally:
        store.dispose()
    assert [p.title for p in loaded.posts] == ["One", "Two"]


@pytest.mark.skipif(not REAL_FEEDS, reason=realsites.absent(FEEDS))
@pytest.mark.parametrize("name", REAL_FEEDS)
def test_real_feeds_agree_with_their_independent_parse(name: str) -> None:
    oracle = json.loads((FEEDS / f"{name}.oracle.json").read_text(encoding="utf-8"))
    entries = read_feed((FEEDS / f"{name}.xml").read_bytes(), "https://feeds.example/")[0]
    assert len(entries) == len(oracle["entries"])
    for entry, expected in zip(entries, oracle["entries"], strict=True):
        assert entry.id == (expected["id"] or expected["link"])
        assert entry.link == expected["link"]
        assert entry.title == " ".join(expected["title_text"].split())
        assert entry.categories == tuple(expected["categories"])
        when = expected["published"] or expected["updated"]
        if when.startswith("0001"):
            assert entry.date is None
        else:
            assert entry.date is not None and entry.date.isoformat() == when


@pytest.mark.skipif(not REAL_FEEDS, reason=realsites.absent(FEEDS))
@pytest.mark.parametrize("name", REAL_FEEDS)
def test_real_feeds_served_over_http_become_posts(
    name: str, server: FeedServer, migrated_sqlite_url: str
) -> None:
    oracle = json.loads((FEEDS / f"{name}.oracle.json").read_text(encoding="utf-8"))
    atom = oracle["feed"].get("format") == "atom"
    server.routes["/feed"] = Route(
        (FEEDS / f"{name}.xml").read_bytes(),
        content_type="application/atom+xml" if atom else "application/rss+xml",
    )
    store = open_store(migrated_sqlite_url)
    try:
        loaded = load_feed_posts(server.url("/feed"), store, now=NOW, tz=LONDON)
    finally:
        store.dispose()
    posts = {post.id: post for post in loaded.posts}
    expected = {(e["id"] or e["link"]): e for e in oracle["entries"]}
    assert set(posts) == set(expected)
    for post_id, entry in expected.items():
        assert posts[post_id].url == entry["link"]
        assert list(posts[post_id].categories) == entry["categories"]
        when = entry["published"] or entry["updated"]
        if not when.startswith("0001"):
            # The same instant (== between zones is False for a time in a DST fold).
            assert posts[post_id].date.timestamp() == datetime.fromisoformat(when).timestamp()
