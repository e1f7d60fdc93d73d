"""Hugo sites read as Hugo 0.111 builds them: real Hugo is the oracle.

A small fixture site (tests/data/hugo_site, its oracle built by real Hugo and checked in, rebuilt
here when hugo is installed); the real sites are read in test_realsites.
"""

from __future__ import annotations

import json
import shutil
from collections import Counter
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from digest.errors import ConfigError
from digest.sources.hugo import is_hugo_site
from digest.sources.hugo.reader import HugoPage, load_hugo_posts, read_hugo_site
from digest.sources.hugo.summary import plain_excerpt
from tests.helpers.hugo_oracle import build_oracle

DATA = Path(__file__).parents[1] / "data"
FIXTURE = DATA / "hugo_site"
FIXTURE_ORACLE = DATA / "hugo_site.oracle.json"
# What must agree on at least 99% of the pages (Must show 1); excerpts are reported apart.
CORE_FIELDS = ("url", "date", "publish_date", "expiry_date", "categories", "draft", "published")


def _iso(value: datetime | None) -> str | None:
    # The oracle layouts print whole seconds.
    return value.replace(microsecond=0).isoformat() if value else None


def _facts(page: HugoPage, now: datetime) -> dict[str, Any]:
    return {
        "url": page.permalink,
        "date": _iso(page.date),
        "publish_date": _iso(page.publish_date),
        "expiry_date": _iso(page.expiry_date),
        "lastmod": _iso(page.lastmod),
        "categories": list(page.categories),
        "tags": list(page.tags),
        "draft": page.draft,
        "published": page.published_at(now),
        "lang": page.lang,
        "excerpt": plain_excerpt(page.summary),
    }


def _oracle_facts(entry: dict[str, Any]) -> dict[str, Any]:
    return {
        "url": entry["abs"],
        "date": entry["date"],
        "publish_date": entry["publish_date"],
        "expiry_date": entry["expiry_date"],
        "lastmod": entry["lastmod"],
        "categories": entry["categories"],
        "tags": entry["tags"],
        "draft": entry["draft"],
        "published": entry["published_default"],
        "lang": entry["lang"],
        "excerpt": " ".join(entry["excerpt"].split()),
    }


def _agreement(site: Path, oracle: dict[str, Any]) -> tuple[Counter[str], int, list[str]]:
    now = datetime.fromisoformat(oracle["time"].replace("Z", "+00:00"))
    pages = {(p.relative_path, p.lang): p for p in read_hugo_site(site).pages}
    agree: Counter[str] = Counter()
    wrong: list[str] = []
    for entry in oracle["posts"]:
        page = pages.pop((entry["path"], entry["lang"]), None)
        if page is None:
            wrong.append(f"missing {entry['path']}")
            continue
        mine, theirs = _facts(page, now), _oracle_facts(entry)
        for key, value in theirs.items():
            if mine[key] == value:
                agree[key] += 1
            else:
                wrong.append(f"{entry['path']} {key}: {mine[key]!r} != {value!r}")
    wrong.extend(f"not a page in Hugo: {path}" for path, _lang in pages)
    return agree, len(oracle["posts"]), wrong


def test_fixture_site_agrees_with_hugo_on_every_field() -> None:
    oracle = json.loads(FIXTURE_ORACLE.read_text(encoding="utf-8"))
    agree, total, wrong = _agreement(FIXTURE, oracle)
    assert total == 14
    assert wrong == []
    assert all(agree[key] == total for key in (*CORE_FIELDS, "excerpt", "lastmod"))


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("hugo") is None, reason="hugo is not installed")
def test_fixture_oracle_is_what_hugo_builds_now(tmp_path: Path) -> None:
    oracle = json.loads(FIXTURE_ORACLE.read_text(encoding="utf-8"))
    assert build_oracle(FIXTURE, tmp_path, oracle["time"]) == oracle


NOW = datetime.fromisoformat("2026-11-29T12:00:00+00:00")


def test_posts_come_from_the_main_section_in_one_language_newest_first() -> None:
    loaded = load_hugo_posts(FIXTURE, now=NOW)
    ids = [post.id for post in loaded.posts]
    assert "content/notes/a-note.md" not in ids  # another section
    assert "content/about.md" not in ids  # no section, no date
    assert "content/posts/draft-post.md" not in ids
    assert "content/posts/bundle-one/extra.md" not in ids  # a bundle's resource
    assert "content/posts/bundle-one/index.fr.md" not in ids
    dates = [post.date for post in loaded.posts]
    assert dates == sorted(dates, reverse=True)
    first = next(p for p in loaded.posts if p.id == "content/posts/plain-toml.md")
    assert first.url == "https://example.org/blog/2026/11/20/plain-toml-first-post/"
    assert first.date.isoformat() == "2026-11-20T09:30:00-05:00"
    assert first.categories == ("News",) and first.tags == ("hugo", "toml")
    assert first.title == "Plain TOML: first post!"
    assert first.excerpt.startswith("<p>The first words of a post")
    assert loaded.problems == ()


def test_future_and_expired_pages_are_not_published_at_the_time() -> None:
    posts = {p.id: p for p in load_hugo_posts(FIXTURE, now=NOW).posts}
    # A future date keeps the post out by itself (selection: "future"); an expiry passed or a
    # publishDate still ahead of an earlier date makes it unpublished at the time.
    future = posts["content/posts/future-post.md"]
    assert future.published is True and future.date > NOW
    assert posts["content/posts/expired-post.md"].published is False
    scheduled = datetime.fromisoformat("2026-11-25T11:00:00-05:00")
    before = {p.id: p for p in load_hugo_posts(FIXTURE, now=scheduled).posts}
    assert before["content/posts/publish-later.md"].published is False
    assert posts["content/posts/publish-later.md"].published is True


def test_another_language_sections_and_drafts() -> None:
    french = load_hugo_posts(FIXTURE, now=NOW, lang="fr-CA")
    assert [p.url for p in french.posts] == ["https://example.org/blog/fr/2026/07/04/un-paquet/"]
    assert french.posts[0].categories == ("Paquets",)
    notes = load_hugo_posts(FIXTURE, now=NOW, sections=["notes"])
    assert [p.id for p in notes.posts] == ["content/notes/a-note.md"]
    drafts = load_hugo_posts(FIXTURE, now=NOW, include_drafts=True)
    draft = next(p for p in drafts.posts if p.id == "content/posts/draft-post.md")
    assert draft.draft is True


def test_summaries_divider_front_matter_and_first_words() -> None:
    posts = {p.id: p for p in load_hugo_posts(FIXTURE, now=NOW).posts}
    assert posts["content/posts/date-only.md"].excerpt == "Intro that stays."
    assert posts["content/posts/json-front.md"].excerpt == "A summary written by hand."
    words = posts["content/posts/plain-toml.md"].excerpt
    assert "second sentence" not in words and words.endswith("summary.</p>")


def test_unknown_language_and_broken_page(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"site.lang: 'de' is not one of .*\(en, fr\)"):
        load_hugo_posts(FIXTURE, now=NOW, lang="de")
    site = tmp_path / "site"
    shutil.copytree(FIXTURE, site)
    (site / "content" / "posts" / "broken.md").write_text("---\ntitle: [oops\n---\nx\n")
    loaded = load_hugo_posts(site, now=NOW)
    assert [p.path for p in loaded.problems] == [str(site / "content/posts/broken.md")]
    assert "YAML front matter" in loaded.problems[0].reason
    assert len(loaded.posts) == len(load_hugo_posts(FIXTURE, now=NOW).posts)


def test_detects_a_hugo_site(tmp_path: Path) -> None:
    assert is_hugo_site(FIXTURE)
    (tmp_path / "content").mkdir()
    assert not is_hugo_site(tmp_path)
    (tmp_path / "config.toml").write_text('baseURL = "https://x.example/"\n')
    assert is_hugo_site(tmp_path)


def test_a_leading_data_image_and_a_long_closing_dash_line(tmp_path: Path) -> None:
    # What real Hugo 0.111 builds: the summary is the text after an inline data: image (no
    # words in it), and front matter closed by `----------` is closed (the rest is a rule).
    image = "data:image/png;base64," + "iVBORw0KGgo" * 800
    root = tmp_path / "site"
    (root / "content" / "posts").mkdir(parents=True)
    (root / "hugo.toml").write_text('baseURL = "https://x.org/"\n', encoding="utf-8")
    (root / "content" / "posts" / "image.md").write_text(
        f'---\ntitle: Image\ndate: 2020-01-01\n---\n<img src="{image}">\n\nHello world.\n',
        encoding="utf-8",
    )
    (root / "content" / "posts" / "dashes.md").write_text(
        "---\ntitle: Dashes\ndate: 2020-01-02\n----------\nAfter a long closing line.\n",
        encoding="utf-8",
    )
    site = read_hugo_site(root)
    assert site.problems == ()
    pages = {p.title: plain_excerpt(p.summary) for p in site.pages}
    assert pages == {"Image": "Hello world.", "Dashes": "After a long closing line."}
