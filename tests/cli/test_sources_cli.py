"""Hugo and feed sources through the CLI: `digest posts --format json` keeps its fields, and
`digest send` with a feed served over HTTP sends each entry once, whatever the feed does next.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner, Result

from digest.cli import cli
from tests.conftest import SmtpServer, sqlite_only
from tests.helpers.feed_server import FeedServer, Route, feed_server
from tests.helpers.site_fixtures import Site, add_subscribers, make_site
from tests.helpers.store_rows import table_counts

DATA = Path(__file__).parents[1] / "data"
AS_OF = "2026-11-29T12:00:00+00:00"
CONTRACT_FIELDS = {"title", "date", "categories", "tags", "url", "path"}
ENTRY = """    <item>
      <title>{title}</title>
      <link>https://example.org/posts/{slug}/</link>
      <pubDate>{date}</pubDate>
      <guid>https://example.org/posts/{slug}/</guid>
      <category>News</category>
      <description>About {title}.</description>
    </item>
"""


def rss(*entries: tuple[str, str, str]) -> bytes:
    items = "".join(ENTRY.format(title=t, slug=s, date=d) for t, s, d in entries)
    return (
        '<?xml version="1.0" encoding="utf-8"?>\n<rss version="2.0"><channel>'
        "<title>Feed Blog</title><link>https://example.org/</link>"
        f"<description>Posts</description>\n{items}</channel></rss>\n"
    ).encode()


FIRST = ("First", "first", "Thu, 26 Nov 2026 09:00:00 +0000")
SECOND = ("Second", "second", "Fri, 27 Nov 2026 09:00:00 +0000")


def invoke(config: Path, *args: str) -> Result:
    return CliRunner().invoke(cli, ["--config", str(config), *args])


def _rewrite_site(site: Site, **keys: object) -> None:
    config = yaml.safe_load(site.config_path.read_text(encoding="utf-8"))
    config["site"] = {**config["site"], **keys}
    site.config_path.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")


@pytest.fixture
def server() -> Iterator[FeedServer]:
    with feed_server() as running:
        yield running


@pytest.fixture
def feed_site(
    tmp_path: Path, migrated_database_url: str, smtp_server: SmtpServer, server: FeedServer
) -> Site:
    site = make_site(tmp_path / "site", migrated_database_url, smtp_server.port)
    _rewrite_site(site, feed_url=server.url("/index.xml"))
    store = site.store()
    add_subscribers(store, [("all@example.com", []), ("news@example.org", ["news"])])
    store.dispose()
    return site


def test_posts_json_of_a_hugo_site_has_the_contract_fields(tmp_path: Path) -> None:
    shutil.copytree(DATA / "hugo_site", tmp_path / "blog")
    config = tmp_path / "config.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "site": {"root": "blog"},
                "email": {"from": "News <news@example.com>"},
                "database": {"url": f"sqlite:///{tmp_path / 'digest.db'}"},
                "digests": {"weekly": {"lookback_days": 30}},
            }
        ),
        encoding="utf-8",
    )
    result = invoke(config, "posts", "--all", "--as-of", AS_OF, "--format", "json")
    assert result.exit_code == 0, result.output
    rows = {row["path"]: row for row in json.loads(result.stdout)}
    assert all(set(row) >= CONTRACT_FIELDS for row in rows.values())
    toml = rows["content/posts/plain-toml.md"]
    assert toml["url"] == "https://example.org/blog/2026/11/20/plain-toml-first-post/"
    assert toml["date"] == "2026-11-20T09:30:00-05:00"
    assert (toml["categories"], toml["tags"]) == (["News"], ["hugo", "toml"])
    assert rows["content/posts/future-post.md"]["status"] == "future"
    assert rows["content/posts/expired-post.md"]["status"] == "unpublished"
    new = invoke(config, "posts", "--as-of", AS_OF, "--format", "json")
    assert new.exit_code == 0, new.output
    # Within 30 days, published at the time, in the main section, in English, newest first.
    assert [row["path"] for row in json.loads(new.stdout)] == [
        "content/posts/yaml-offset.md",
        "content/posts/json-front.md",
        "content/posts/plain-toml.md",
    ]


@sqlite_only
def test_posts_json_of_a_feed_has_the_contract_fields(feed_site: Site, server: FeedServer) -> None:
    server.routes["/index.xml"] = Route(rss(SECOND, FIRST))
    result = invoke(feed_site.config_path, "posts", "--as-of", AS_OF, "--format", "json")
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)
    assert all(set(row) >= CONTRACT_FIELDS for row in rows)
    assert [(r["path"], r["title"], r["categories"]) for r in rows] == [
        ("https://example.org/posts/second/", "Second", ["News"]),
        ("https://example.org/posts/first/", "First", ["News"]),
    ]
    assert rows[0]["date"] == "2026-11-27T09:00:00+00:00"
    assert rows[0]["url"] == "https://example.org/posts/second/"


def test_a_feed_entry_is_sent_once_through_304s_edits_and_new_dates(
    feed_site: Site, server: FeedServer, smtp_server: SmtpServer
) -> None:
    config = feed_site.config_path
    server.routes["/index.xml"] = Route(rss(SECOND, FIRST), etag='"1"')
    first = invoke(config, "send", "weekly", "--as-of", AS_OF)
    assert first.exit_code == 0, first.output
    assert "2 posts, 2 sent" in first.stdout
    # Unchanged: the server answers 304 and nothing new goes out.
    again = invoke(config, "send", "weekly", "--as-of", AS_OF)
    assert again.exit_code == 0, again.output
    assert "no new posts" in again.stdout
    assert server.requests[-1][1].get("if-none-match") == '"1"'
    # Edited and re-dated: still the same entries, so nothing goes out.
    edited = ("Second, edited", "second", "Sat, 28 Nov 2026 10:00:00 +0000")
    server.routes["/index.xml"] = Route(rss(edited, FIRST), etag='"2"')
    redated = invoke(config, "send", "weekly", "--as-of", AS_OF)
    assert redated.exit_code == 0, redated.output
    assert "no new posts" in redated.stdout
    # A new entry goes out alone.
    third = ("Third", "third", "Sat, 28 Nov 2026 11:00:00 +0000")
    server.routes["/index.xml"] = Route(rss(third, edited, FIRST), etag='"3"')
    last = invoke(config, "send", "weekly", "--as-of", AS_OF)
    assert last.exit_code == 0, last.output
    assert "1 post, 2 sent" in last.stdout
    assert len(smtp_server.handler.messages) == 4
    text = smtp_server.handler.messages[-1].message.get_body(("plain",))
    assert text is not None
    assert "Third" in text.get_content() and "Second" not in text.get_content()


@sqlite_only
@pytest.mark.parametrize(
    ("route", "reason"),
    [
        (Route(b"busy", status=500), "HTTP 500 Internal Server Error"),
        (Route(b"<rss><channel><item><title>x</title>"), "not a valid RSS or Atom feed"),
        (Route(b"x" * (11 * 1024 * 1024)), "larger than the 10240 KiB limit"),
    ],
)
def test_a_feed_that_fails_is_one_line_exit_1_and_uses_nothing_up(
    feed_site: Site, server: FeedServer, smtp_server: SmtpServer, route: Route, reason: str
) -> None:
    config = feed_site.config_path
    server.routes["/index.xml"] = route
    for args in (["send", "weekly"], ["posts"], ["preview", "weekly"]):
        result = invoke(config, *args, "--as-of", AS_OF)
        assert result.exit_code == 1, result.output
        # One line about the feed (other lines come from unrelated threads of earlier tests).
        feed_lines = [line for line in result.stderr.splitlines() if "feed" in line]
        assert len(feed_lines) == 1, result.stderr
        assert feed_lines[0].startswith(f"error: feed {server.url('/index.xml')}: {reason}")
        assert "Traceback" not in result.output
    store = feed_site.store()
    try:
        with store.session() as session:
            counts = table_counts(session)
    finally:
        store.dispose()
    assert counts["runs"] == counts["sent_posts"] == counts["deliveries"] == 0
    assert smtp_server.handler.messages == []
    server.routes["/index.xml"] = Route(rss(SECOND, FIRST))
    fixed = invoke(config, "send", "weekly", "--as-of", AS_OF)
    assert fixed.exit_code == 0, fixed.output
    assert "2 posts, 2 sent" in fixed.stdout
