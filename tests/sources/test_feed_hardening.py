"""Feeds an attacker writes: headers dripped a byte at a time, links that are no web links,
fields of the wrong type, control characters in titles."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from xml.etree import ElementTree

import pytest
from click.testing import CliRunner

from digest.cli import cli
from digest.delivery.run import send_digest
from digest.errors import FeedError
from digest.sources.feed.fetch import fetch_feed
from digest.sources.feed.reader import read_feed
from digest.sources.post import Post
from digest.web import make_app
from tests.conftest import SmtpServer
from tests.helpers.site_fixtures import AS_OF, Site, add_subscribers, make_site
from tests.helpers.web_client import Client


@pytest.fixture
def dripping_server() -> Iterator[str]:
    """An HTTP server that answers with headers at one byte every 0.2 s, for ever."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(4)
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            with conn:
                conn.recv(65536)
                drip = b"HTTP/1.1 200 OK\r\nX-Slow: " + b"a" * 100_000
                for byte in drip:
                    if stop.is_set():
                        return
                    try:
                        conn.sendall(bytes([byte]))
                    except OSError:
                        break
                    time.sleep(0.2)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}/feed.xml"
    finally:
        stop.set()
        listener.close()
        thread.join(timeout=5)


def test_the_deadline_holds_while_headers_drip_in(dripping_server: str) -> None:
    outcome: list[BaseException | None] = []

    def fetch() -> None:
        try:
            fetch_feed(dripping_server, timeout=2)
            outcome.append(None)
        except BaseException as exc:
            outcome.append(exc)

    worker = threading.Thread(target=fetch, daemon=True)
    worker.start()
    worker.join(timeout=20)  # each byte comes within httpx's read timeout: only a whole-
    assert not worker.is_alive(), (
        "the fetch was still waiting for headers"
    )  # request deadline ends it
    (error,) = outcome
    assert isinstance(error, FeedError)
    assert error.message.endswith("no complete answer within 2 seconds")


OSC52 = "\x1b]52;c;ZXZpbA==\x07"  # writes "evil" to the terminal's clipboard
HOSTILE = {
    "version": "https://jsonfeed.org/version/1.1",
    "title": "Hostile",
    "items": [
        {
            "id": "1",
            "url": "javascript:alert(1)",
            "title": f"Control\x01 and {OSC52}escape\x9b2J",
            "date_published": "2026-11-26T09:00:00Z",
            "image": "data:image/svg+xml,<svg onload=alert(1)>",
            "tags": ["ok\x07", "fine"],
            "content_html": "<p>Body</p>",
        },
        {
            "id": 2,
            "url": "https://example.org/two/",
            "title": "Numbers where strings belong",
            "date_published": "2026-11-25T09:00:00Z",
            "tags": 5,
            "image": 7,
            "summary": 3,
            "authors": "nobody",
        },
    ],
}


def _feed_site(tmp_path: Path, database_url: str, port: int, body: bytes) -> Site:
    feed = tmp_path / "feed.json"
    feed.write_bytes(body)
    extra = {"site": {"source": "feed", "feed_url": str(feed)}, "web": {"archive": True}}
    return make_site(tmp_path / "site", database_url, port, extra=extra)


def test_a_hostile_json_feed_reaches_no_terminal_page_or_feed_unclean(
    tmp_path: Path,
    migrated_sqlite_url: str,
    smtp_server: SmtpServer,
) -> None:
    site = _feed_site(tmp_path, migrated_sqlite_url, smtp_server.port, json.dumps(HOSTILE).encode())
    result = CliRunner().invoke(
        cli, ["--config", str(site.config_path), "posts", "--all", "--format", "json"]
    )
    assert result.exit_code == 0, result.output
    one, two = json.loads(result.stdout)
    assert one["title"] == "Control and ]52;c;ZXZpbA==escape2J"
    assert (one["url"], one["image"], one["tags"]) == ("", None, [])
    assert one["categories"] == ["ok", "fine"]
    assert (two["url"], two["image"], two["categories"]) == ("https://example.org/two/", None, [])
    # One warning for the entry with fields of the wrong type, naming them all.
    (warning,) = result.stderr.splitlines()
    assert warning.endswith(
        "entry 2: summary (a number), tags (a number), authors (a text), image (a number) "
        "of the wrong type, left out"
    )
    table = CliRunner().invoke(cli, ["--config", str(site.config_path), "posts", "--all"])
    assert table.exit_code == 0 and "\x1b" not in table.stdout and "\x07" not in table.stdout

    store = site.store()
    add_subscribers(store, [("all@example.com", [])])
    (run,) = send_digest(site.settings(), store, "weekly", as_of=AS_OF)
    assert run.sent == 1
    (received,) = smtp_server.handler.to("all@example.com")
    raw = received.message.as_string()
    assert "javascript:" not in raw and "data:image/svg" not in raw and "\x01" not in raw
    client = Client(make_app(site.settings(), store, mailer_thread=False))
    atom = client.get("/archive/weekly.atom")
    assert atom.status == 200
    ElementTree.fromstring(atom.body.encode("utf-8"))  # well-formed XML: no \x01 in it


def test_a_json_feed_nested_too_deep_is_one_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "deep.json"
    path.write_text('{"version": "https://jsonfeed.org/version/1.1", "items": ' + "[" * 100_000)
    with pytest.raises(FeedError, match=r"refused: nested more than \d+ levels deep"):
        read_feed(path.read_bytes(), path.as_uri())


def test_a_jekyll_image_or_title_cannot_carry_a_script_or_a_control(tmp_path: Path) -> None:
    post = Post(
        id="_posts/x.md",
        path=Path("_posts/x.md"),
        title="A\x01B\nC",
        date=AS_OF,
        slug="x",
        categories=("c\x1b",),
        tags=(),
        author=None,
        excerpt="<p>e\x00</p>",
        content="",
        image=" JavaScript:alert(1)",
        url="https://blog.example.com/x.html",
        published=True,
        draft=False,
    )
    assert (post.title, post.categories, post.excerpt, post.image) == (
        "AB C",
        ("c",),
        "<p>e</p>",
        None,
    )
    assert Post(**{**post.__dict__, "image": "/assets/x.png"}).image == "/assets/x.png"
