"""Jekyll excerpts as Jekyll makes them: includes with parameters (quoted or not, an unquoted
path), include_relative, CRLF files and the separator, one warning per post; also a `source:`
folder and non-ASCII URLs. Real Jekyll is the oracle when it is installed.
"""

from __future__ import annotations

import logging
import re
import shutil
from pathlib import Path

import pytest

from digest.config import Settings, load_settings
from digest.render.excerpts import ExcerptFormatter
from digest.sources.jekyll.reader import load_posts
from tests.helpers.jekyll_fixtures import jekyll_posts, write_site

SITE = {
    "_config.yml": "title: Includes\nurl: https://inc.example.org\n",
    "_includes/youtube.html": (
        '<div class="video">\n  <a href="https://youtu.be/{{ include.id }}">'
        "{{ include.title }}</a>\n</div>\n"
    ),
    "_includes/posts/2017/zh.md": "Read this post in *Chinese* ({{ page.lang }}).\n",
    "_includes/toc.html": (
        '<section class="toc">\n  <header>\n    {% assign t = "Overview" %}\n'
        "    <h3>{{ t }}</h3>\n  </header>\n"
        '<div markdown="1">\n*  Auto generated table of contents\n{:toc}\n</div>\n</section>\n'
    ),
    "_posts/snippets/intro.md": "An introduction from **beside** the post.\n",
    "_posts/2024-01-02-video.md": (
        "---\ntitle: Video\nyoutubeId: abc123\n---\n"
        '{% include youtube.html id=page.youtubeId title="The talk" %}\n\nMore text.\n'
    ),
    "_posts/2024-01-03-translated.md": (
        "---\ntitle: Translated\nlang: zh\n---\n{% include posts/2017/zh.md %}\n\nThe rest.\n"
    ),
    "_posts/2024-01-04-relative.md": (
        "---\ntitle: Relative\n---\n{% include_relative snippets/intro.md %}\n\nThe rest.\n"
    ),
    "_posts/2024-01-05-toc.md": (
        "---\ntitle: Contents\n---\n{% include toc.html %}\n\n## First part\n\nText.\n"
    ),
    "_posts/2024-01-06-crlf.md": (
        "---\r\ntitle: Windows\r\n---\r\nFirst paragraph.\r\n\r\nSecond paragraph.\r\n"
    ),
    "_posts/2024-01-07-definition.md": (
        "---\ntitle: Definition\n---\nSee [the docs][d] and [e].\n\n"
        '[d]: https://docs.example.org/a b\n[e]: /with space "Title"\n'
    ),
}


def _settings(tmp_path: Path) -> Settings:
    write_site(tmp_path / "site", SITE)
    config = tmp_path / "config.yaml"
    config.write_text(
        "site:\n  posts_dir: site/_posts\nemail:\n  from: news@example.com\n", encoding="utf-8"
    )
    return load_settings(config, environ={})


def _texts(settings: Settings) -> dict[str, str]:
    formatter = ExcerptFormatter(settings.site)
    loaded = load_posts(settings.site)
    assert loaded.problems == ()
    return {
        post.id: " ".join(re.sub(r"<[^>]+>", "", formatter.to_html(post.excerpt)).split())
        for post in loaded.posts
    }


EXPECTED = {
    "_posts/2024-01-02-video.md": "The talk",
    "_posts/2024-01-03-translated.md": "Read this post in Chinese (zh).",
    "_posts/2024-01-04-relative.md": "An introduction from beside the post.",
    "_posts/2024-01-05-toc.md": "Overview",
    # CRLF throughout: the default separator "\n\n" is not there, the excerpt is the post.
    "_posts/2024-01-06-crlf.md": "First paragraph. Second paragraph.",
    # kramdown reads a definition whose URL has spaces; CommonMark would show it as text.
    "_posts/2024-01-07-definition.md": "See the docs and e.",
}


def test_includes_and_separators_make_jekylls_excerpts(tmp_path: Path) -> None:
    assert _texts(_settings(tmp_path)) == EXPECTED


@pytest.mark.skipif(shutil.which("jekyll") is None, reason="jekyll is not installed")
def test_the_expected_excerpts_are_what_real_jekyll_builds(tmp_path: Path) -> None:
    write_site(tmp_path / "site", SITE)
    built = {p["relative_path"]: p["excerpt"] for p in jekyll_posts(tmp_path / "site", tmp_path)}
    assert {path: " ".join(text.split()) for path, text in built.items()} == EXPECTED


def test_what_cannot_be_rendered_is_one_warning_per_post(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    files = {
        "_config.yml": "title: T\nurl: https://t.example.org\n",
        "_posts/2024-02-01-broken.md": (
            "---\ntitle: Broken\n---\nA {% include missing.html %} and {% nosuchtag %} "
            "and {% include ../../etc/passwd %}.\n"
        ),
        "_posts/2024-02-02-also.md": "---\ntitle: Also\n---\nB {% include missing.html %}.\n",
    }
    write_site(tmp_path / "site", files)
    config = tmp_path / "config.yaml"
    config.write_text(
        "site:\n  posts_dir: site/_posts\nemail:\n  from: news@example.com\n", encoding="utf-8"
    )
    with caplog.at_level(logging.WARNING, logger="digest"):
        posts = {p.title: p for p in load_posts(load_settings(config, environ={}).site).posts}
    assert posts["Broken"].excerpt == "A  and  and ."
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 2
    broken = next(w for w in warnings if "broken.md" in w)
    assert "missing.html" in broken and "nosuchtag" in broken and "passwd" in broken


def test_a_source_folder_is_not_a_category_and_urls_are_percent_encoded(tmp_path: Path) -> None:
    files = {
        "_config.yml": "title: T\nurl: https://t.example.org\nsource: src\n",
        "src/_posts/2024-03-01-hello.md": "---\ntitle: Hello\ncategories: [news]\n---\nHi.\n",
        "src/_posts/2024-03-02-note.md": (
            "---\ntitle: 聲明\npermalink: /zh/bitcoin-core-聲明/\n---\nHi.\n"
        ),
    }
    write_site(tmp_path / "site", files)
    config = tmp_path / "config.yaml"
    config.write_text(
        "site:\n  posts_dir: site/src/_posts\nemail:\n  from: news@example.com\n",
        encoding="utf-8",
    )
    posts = {p.title: p for p in load_posts(load_settings(config, environ={}).site).posts}
    assert posts["Hello"].categories == ("news",)
    assert posts["Hello"].url == "https://t.example.org/news/2024/03/01/hello.html"
    assert posts["聲明"].url == "https://t.example.org/zh/bitcoin-core-%E8%81%B2%E6%98%8E/"
