"""The sign-up and preferences pages offer the categories of the site's posts, whatever kind of
site it is: a Hugo site and a feed list theirs as a Jekyll site does (they ask the Source).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from digest.store.subscribers import add_subscriber, find_subscriber
from digest.tokens import preferences_url
from tests.conftest import SmtpServer
from tests.helpers.site_fixtures import Site, make_site
from tests.helpers.web_client import Client, path_of

HUGO_CONFIG = 'baseURL = "https://example.org/"\ntitle = "Hugo Blog"\n'
HUGO_PAGES = {
    "a.md": "---\ntitle: A\ndate: 2020-01-02\ncategories: [rust, Go]\n---\nWords.\n",
    "b.md": '+++\ntitle = "B"\ndate = 2020-01-03\ncategories = ["Machine Learning"]\n+++\nMore.\n',
    "c.md": '{\n"title": "C", "date": "2020-01-04", "categories": ["Rust", "Zig"]\n}\nJSON.\n',
    "d.md": "---\ntitle: D\ndate: 2020-01-05\ndraft: true\ncategories: [Secret]\n---\nNot yet.\n",
}
FEED = """<?xml version="1.0" encoding="utf-8"?>
<rss version="2.0"><channel><title>Feed Blog</title><link>https://example.org/</link>
<description>Posts</description>
<item><title>One</title><link>https://example.org/one/</link>
<pubDate>Thu, 02 Jan 2020 09:00:00 +0000</pubDate><category>rust</category>
<category>Go</category></item>
<item><title>Two</title><link>https://example.org/two/</link>
<pubDate>Fri, 03 Jan 2020 09:00:00 +0000</pubDate><category>Machine Learning</category></item>
<item><title>Three</title><link>https://example.org/three/</link>
<pubDate>Sat, 04 Jan 2020 09:00:00 +0000</pubDate><category>Rust</category>
<category>Zig</category></item>
</channel></rss>
"""
# Sorted as people read, once each whatever the case (the newest post's spelling wins).
EXPECTED = ["Go", "Machine Learning", "Rust", "Zig"]


def hugo_site(tmp_path: Path, database_url: str, port: int) -> Site:
    blog = tmp_path / "blog"
    (blog / "content" / "posts").mkdir(parents=True)
    (blog / "hugo.toml").write_text(HUGO_CONFIG, encoding="utf-8")
    for name, text in HUGO_PAGES.items():
        (blog / "content" / "posts" / name).write_text(text, encoding="utf-8")
    extra = {"site": {"source": "hugo", "root": str(blog)}}
    return make_site(tmp_path / "site", database_url, port, extra=extra)


def feed_site(tmp_path: Path, database_url: str, port: int) -> Site:
    feed = tmp_path / "feed.xml"
    feed.write_text(FEED, encoding="utf-8")
    extra = {"site": {"source": "feed", "feed_url": str(feed)}}
    return make_site(tmp_path / "site", database_url, port, extra=extra)


@pytest.mark.parametrize("make", [hugo_site, feed_site], ids=["hugo", "feed"])
def test_signup_and_preferences_pages_list_the_sites_categories(
    make: object, tmp_path: Path, sqlite_url: str, smtp_server: SmtpServer
) -> None:
    assert callable(make)
    site: Site = make(tmp_path, sqlite_url, smtp_server.port)
    settings = site.settings()
    store = site.store()
    client = Client.of(settings, store)

    signup = client.get("/subscribe")
    assert signup.status == 200
    offered = [c for c in EXPECTED if f'name="categories" value="{c}"' in signup.body]
    assert offered == EXPECTED
    assert "Secret" not in signup.body  # a draft's category is not offered
    positions = [signup.body.index(f'value="{c}"') for c in EXPECTED]
    assert positions == sorted(positions)

    add_subscriber(store, "ann@example.com", name="Ann", categories=["Zig"])
    row = find_subscriber(store, "ann@example.com")
    assert row is not None
    page = client.get(path_of(preferences_url(settings, row.id, row.link_key)))
    assert page.status == 200
    for category in EXPECTED:
        checked = " checked" if category == "Zig" else ""
        assert f'name="categories" value="{category}"{checked}>' in page.body
