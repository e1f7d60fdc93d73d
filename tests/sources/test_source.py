"""One Source interface for Jekyll, Hugo and feeds: open_source(site) is how everything outside
sources/ gets posts, and no module outside it reads a site with a particular reader.
"""

from __future__ import annotations

import ast
from datetime import datetime
from pathlib import Path

import pytest

from digest.settings import SiteSettings
from digest.sources import Source, open_source

DIGEST = Path(__file__).resolve().parents[2] / "digest"
READERS = ("digest.sources.jekyll", "digest.sources.hugo", "digest.sources.feed")
NOW = datetime.fromisoformat("2026-11-29T12:00:00+00:00")
URL = "https://blog.example.com"


def test_no_module_outside_sources_imports_a_reader() -> None:
    offenders = []
    for path in DIGEST.rglob("*.py"):
        if path.is_relative_to(DIGEST / "sources"):
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = []
            if isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            elif isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            offenders += [
                f"{path.relative_to(DIGEST)}: {n}" for n in names if n.startswith(READERS)
            ]
    assert offenders == []


def _jekyll(tmp_path: Path) -> SiteSettings:
    posts = tmp_path / "_posts"
    posts.mkdir()
    (posts / "2020-01-02-a.md").write_text("---\ncategories: [Go, rust]\n---\nA\n", "utf-8")
    (posts / "2020-01-03-b.md").write_text(
        "---\ncategories: Rust\npublished: false\n---\n", "utf-8"
    )
    (posts / "2020-01-04-c.md").write_text("---\ncategories: [Zig]\n---\nC\n", "utf-8")
    return SiteSettings(title="T", url=URL, posts_dir=posts)


def _hugo(tmp_path: Path) -> SiteSettings:
    (tmp_path / "content" / "posts").mkdir(parents=True)
    (tmp_path / "hugo.toml").write_text('baseURL = "https://example.org/"\n', "utf-8")
    page = "---\ntitle: {0}\ndate: 2020-01-0{1}\ncategories: [{2}]\n---\n{0}\n"
    for number, (title, category) in enumerate([("A", "Go"), ("B", "rust"), ("C", "Zig")], 2):
        path = tmp_path / "content" / "posts" / f"{title.lower()}.md"
        path.write_text(page.format(title, number, category), "utf-8")
    return SiteSettings(title="T", url=URL, source="hugo", root=tmp_path)


def _feed(tmp_path: Path) -> SiteSettings:
    item = (
        '{{"id": "{0}", "url": "https://e.org/{0}", '
        '"date_published": "2020-01-0{1}T09:00:00Z", "tags": ["{2}"]}}'
    )
    items = [
        item.format(t, n, c)
        for n, (t, c) in enumerate([("a", "Go"), ("b", "rust"), ("c", "Zig")], 2)
    ]
    feed = tmp_path / "feed.json"
    feed.write_text(
        '{"version": "https://jsonfeed.org/version/1.1", "title": "F", "items": ['
        + ", ".join(items)
        + "]}",
        "utf-8",
    )
    return SiteSettings(title="T", url=URL, source="feed", feed_url=str(feed))


@pytest.mark.parametrize(
    ("make", "kind", "key"),
    [
        (_jekyll, "JekyllSource", "site.posts_dir"),
        (_hugo, "HugoSource", "site.root"),
        (_feed, "FeedSource", "site.feed_url"),
    ],
)
def test_each_kind_of_site_is_a_source_with_posts_categories_and_a_description(
    tmp_path: Path, make: object, kind: str, key: str
) -> None:
    assert callable(make)
    source = open_source(make(tmp_path))
    assert isinstance(source, Source) and type(source).__name__ == kind
    loaded = source.load(as_of=NOW)
    assert loaded.problems == ()
    assert [p.date.day for p in loaded.posts][:2] == [4, 3]  # newest first
    assert source.categories(now=NOW) == ["Go", "rust", "Zig"]
    assert source.describe().startswith(key)
