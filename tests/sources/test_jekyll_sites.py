"""Jekyll sites read as Jekyll 4 builds them: site root, defaults, nested _posts, Liquid, dates."""

from __future__ import annotations

import logging
import re
import shutil
from datetime import datetime
from pathlib import Path

import pytest

from digest.config import load_settings
from digest.errors import ConfigError
from digest.render.excerpts import ExcerptFormatter
from digest.render.renderer import Renderer
from digest.settings import Settings
from digest.sources.jekyll.reader import load_posts
from digest.sources.post import Post
from tests.helpers.jekyll_fixtures import SHAPED_EXPECTED, SHAPED_SITE, jekyll_posts, write_site

CONFIG = """
site:
  title: Shaped
  url: https://blog.example.org
  posts_dir: {posts_dir}
email:
  from: news@example.com
"""
EMAIL = "email:\n  from: news@example.com\n"


def shaped(tmp_path: Path, posts_dir: str = "site/_posts") -> Settings:
    write_site(tmp_path / "site", SHAPED_SITE)
    config = tmp_path / "config.yaml"
    config.write_text(CONFIG.format(posts_dir=posts_dir), encoding="utf-8")
    return load_settings(config, environ={})


def by_path(settings: Settings) -> dict[str, Post]:
    loaded = load_posts(settings.site)
    assert loaded.problems == ()
    return {p.id: p for p in loaded.posts}


def excerpt_text(settings: Settings, post: Post) -> str:
    formatter = ExcerptFormatter(settings.site)
    return " ".join(re.sub(r"<[^>]+>", "", formatter.to_html(post.excerpt)).split())


def test_urls_dates_and_categories_are_jekylls(tmp_path: Path) -> None:
    posts = by_path(shaped(tmp_path))
    got = {path: (p.url, p.date.isoformat(), list(p.categories)) for path, p in posts.items()}
    assert got == SHAPED_EXPECTED


@pytest.mark.skipif(shutil.which("jekyll") is None, reason="jekyll is not installed")
def test_expected_values_are_what_real_jekyll_builds(tmp_path: Path) -> None:
    write_site(tmp_path / "site", SHAPED_SITE)
    oracle = jekyll_posts(tmp_path / "site", tmp_path)
    got = {p["relative_path"]: (p["abs"], p["date"], p["categories"]) for p in oracle}
    assert got == SHAPED_EXPECTED


@pytest.mark.skipif(shutil.which("jekyll") is None, reason="jekyll is not installed")
def test_excerpts_read_as_jekylls(tmp_path: Path) -> None:
    settings = shaped(tmp_path)
    posts = by_path(settings)
    oracle = jekyll_posts(tmp_path / "site", tmp_path)
    for entry in oracle:
        ours = excerpt_text(settings, posts[entry["relative_path"]])
        if "kramdown" in entry["relative_path"]:
            # kramdown prints the footnote inside the excerpt; an email leaves it out.
            assert ours == "Big news today."
        else:
            assert ours == entry["excerpt"], entry["relative_path"]


def test_site_root_and_config_found_above_a_nested_posts_dir(tmp_path: Path) -> None:
    settings = shaped(tmp_path, "site/en/news/_posts")
    assert settings.site.root == tmp_path / "site"
    assert settings.site.timezone == "America/Los_Angeles"
    assert settings.site.lang == "ja"
    posts = by_path(settings)
    # A _posts below the root means that folder only (one language of a multilingual site).
    assert list(posts) == ["en/news/_posts/2020-06-06-release.md"]
    assert posts["en/news/_posts/2020-06-06-release.md"].categories == ("en", "news")


def test_site_root_key_sets_the_source_folder(tmp_path: Path) -> None:
    write_site(tmp_path / "blog-src", SHAPED_SITE)
    config = tmp_path / "config.yaml"
    config.write_text(
        "site:\n  title: T\n  url: https://blog.example.org\n  root: blog-src\n"
        "  lang: pt_BR\nemail:\n  from: news@example.com\n",
        encoding="utf-8",
    )
    settings = load_settings(config, environ={})
    assert settings.site.posts_dir == tmp_path / "blog-src/_posts"
    assert settings.site.lang == "pt-BR"
    assert len(load_posts(settings.site).posts) == len(SHAPED_EXPECTED)


def test_bad_lang_is_a_config_error(tmp_path: Path) -> None:
    write_site(tmp_path / "site", SHAPED_SITE)
    config = tmp_path / "config.yaml"
    text = CONFIG.format(posts_dir="site/_posts") + "  lang: not a language\n"
    config.write_text(text.replace("email:\n  from: news@example.com\n", "") + EMAIL)
    with pytest.raises(ConfigError, match=r"site\.lang: 'not a language' is not a language tag"):
        load_settings(config, environ={})


def test_liquid_in_excerpts_is_rendered(tmp_path: Path) -> None:
    settings = shaped(tmp_path)
    post = by_path(settings)["en/news/_posts/2020-06-06-release.md"]
    assert "{%" not in post.excerpt and "{{" not in post.excerpt
    assert post.excerpt.startswith("Shaped 1.0 is out: Shaped 1.0 released.")
    assert "(https://github.com/example/shaped/issues/1)" in post.excerpt
    assert "(/news/2020/03/03/dots/)" in post.excerpt
    assert "(/news/2020/02/02/no-front-matter/)" in post.excerpt
    html = ExcerptFormatter(settings.site).to_html(post.excerpt)
    assert 'href="https://blog.example.org/news/2020/03/03/dots/"' in html


def test_reference_links_keep_their_targets(tmp_path: Path) -> None:
    settings = shaped(tmp_path)
    post = by_path(settings)["_posts/2020-07-07-references.md"]
    html = ExcerptFormatter(settings.site).to_html(post.excerpt)
    assert '<a href="https://example.org/docs"' in html
    assert '<a href="https://example.org/"' in html
    assert "unused" not in post.excerpt  # only definitions the excerpt uses come along


def test_kramdown_attributes_and_footnotes_do_not_show(tmp_path: Path) -> None:
    settings = shaped(tmp_path)
    post = by_path(settings)["_posts/2020-08-08-kramdown.md"]
    text = excerpt_text(settings, post)
    assert text == "Big news today."
    html = ExcerptFormatter(settings.site).to_html(post.excerpt)
    assert '<img src="https://blog.example.org/logo.png" alt="logo"' in html


def test_a_yml_file_in_posts_is_not_a_post(tmp_path: Path) -> None:
    posts = by_path(shaped(tmp_path))
    assert "_posts/2020-04-04-data.yml" not in posts
    assert not any("vendor-notes" in path for path in posts)  # `exclude:` is honoured


def test_front_matter_closed_by_dots(tmp_path: Path) -> None:
    post = by_path(shaped(tmp_path))["_posts/2020-03-03-dots.md"]
    assert post.title == "Closed by dots"
    assert post.excerpt == "Front matter closed by three dots."


@pytest.mark.parametrize(
    ("written", "expected"),
    [
        ("2023-01-29 18:30:22 2023 -0800", datetime.fromisoformat("2023-01-29T18:30:22-08:00")),
        ("11-9-2017", datetime.fromisoformat("2017-09-11T00:00:00-07:00")),
        # Ruby reads the middle number as the month (Time.parse("9/11/2017") is November 9).
        ("9/11/2017", datetime.fromisoformat("2017-11-09T00:00:00-08:00")),
        ("Sep 11, 2017 10:00", datetime.fromisoformat("2017-09-11T10:00:00-07:00")),
        ("11 September 2017", datetime.fromisoformat("2017-09-11T00:00:00-07:00")),
    ],
)
def test_dates_ruby_reads(tmp_path: Path, written: str, expected: datetime) -> None:
    files = {
        "_config.yml": "timezone: America/Los_Angeles\n",
        "_posts/2001-01-01-d.md": f"---\ndate: {written}\n---\nx\n",
    }
    write_site(tmp_path / "site", files)
    config = tmp_path / "config.yaml"
    config.write_text(CONFIG.format(posts_dir="site/_posts"), encoding="utf-8")
    [post] = load_posts(load_settings(config, environ={}).site).posts
    assert post.date == expected


def test_unknown_liquid_is_nothing_and_one_warning_per_post(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    files = {
        "_config.yml": "title: T\n",
        "_posts/2020-01-01-a.md": "---\n---\nA {% gist 123 %} B {{ 'x' | sparkle }} C\n",
        "_posts/2020-01-02-b.md": "---\n---\nD {% gist 456 %} E\n",
    }
    write_site(tmp_path / "site", files)
    config = tmp_path / "config.yaml"
    config.write_text(CONFIG.format(posts_dir="site/_posts"), encoding="utf-8")
    with caplog.at_level(logging.WARNING):
        posts = {p.slug: p for p in load_posts(load_settings(config, environ={}).site).posts}
    assert posts["a"].excerpt == "A  B  C"
    assert posts["b"].excerpt == "D  E"
    warnings = sorted(r.getMessage() for r in caplog.records if r.levelname == "WARNING")
    assert len(warnings) == 2  # one per post, naming each thing left out
    assert "2020-01-01-a.md" in warnings[0] and "'gist'" in warnings[0]
    assert "'sparkle'" in warnings[0]
    assert "2020-01-02-b.md" in warnings[1] and "'gist'" in warnings[1]


def test_site_lang_from_jekyll_is_the_emails_language(tmp_path: Path) -> None:
    write_site(tmp_path / "site", SHAPED_SITE)
    config = tmp_path / "config.yaml"
    text = CONFIG.format(posts_dir="site/_posts")
    config.write_text(text + "digests:\n  weekly:\n    lookback_days: 100000\n", encoding="utf-8")
    settings = load_settings(config, environ={})
    posts = list(load_posts(settings.site).posts)
    segment = Renderer(settings).render_segment(
        settings.digest("weekly"), posts, as_of=datetime.fromisoformat("2024-01-01T00:00:00+00:00")
    )
    assert '<html lang="ja"' in segment.html


# Defaults scoped to one file or a glob, beside folder-wide ones: each post gets its own.
SCOPED_SITE = {
    "_config.yml": """
title: Scopes
url: https://blog.example.org
permalink: /:title/
defaults:
  - scope: {path: "", type: posts}
    values: {author: Everyone}
  - scope: {path: "_posts/2024-01-02-two.md"}
    values: {permalink: /two-by-its-path/, author: Two}
  - scope: {path: "_posts/*-three.md", type: posts}
    values: {permalink: /three-by-a-glob/}
  - scope: {path: "_posts/deep", type: posts}
    values: {permalink: "/deep/:title/"}
  - scope: {path: "_posts/deep/2024-01-05-five.md", type: posts}
    values: {author: Five}
""",
    "_posts/2024-01-01-one.md": "---\ntitle: One\n---\nOne.\n",
    "_posts/2024-01-02-two.md": "---\ntitle: Two\n---\nTwo.\n",
    "_posts/2024-01-03-three.md": "---\ntitle: Three\n---\nThree.\n",
    "_posts/deep/2024-01-04-four.md": "---\ntitle: Four\n---\nFour.\n",
    "_posts/deep/2024-01-05-five.md": "---\ntitle: Five\n---\nFive.\n",
}
SCOPED_EXPECTED = {
    "_posts/2024-01-01-one.md": ("https://blog.example.org/one/", "Everyone"),
    "_posts/2024-01-02-two.md": ("https://blog.example.org/two-by-its-path/", "Two"),
    "_posts/2024-01-03-three.md": ("https://blog.example.org/three-by-a-glob/", "Everyone"),
    "_posts/deep/2024-01-04-four.md": ("https://blog.example.org/deep/four/", "Everyone"),
    "_posts/deep/2024-01-05-five.md": ("https://blog.example.org/deep/five/", "Five"),
}


def test_defaults_scoped_to_a_file_or_a_glob_apply_to_that_post_only(tmp_path: Path) -> None:
    write_site(tmp_path / "site", SCOPED_SITE)
    config = tmp_path / "config.yaml"
    config.write_text(CONFIG.format(posts_dir="site/_posts"), encoding="utf-8")
    posts = by_path(load_settings(config, environ={}))
    assert {path: (p.url, p.author) for path, p in posts.items()} == SCOPED_EXPECTED


@pytest.mark.skipif(shutil.which("jekyll") is None, reason="jekyll is not installed")
def test_file_and_glob_scoped_urls_are_what_real_jekyll_builds(tmp_path: Path) -> None:
    write_site(tmp_path / "site", SCOPED_SITE)
    oracle = jekyll_posts(tmp_path / "site", tmp_path)
    got = {p["relative_path"]: p["abs"] for p in oracle}
    assert got == {path: url for path, (url, _author) in SCOPED_EXPECTED.items()}
