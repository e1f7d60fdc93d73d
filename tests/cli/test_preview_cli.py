"""`digest preview`: renders real posts from disk, records nothing, exits 0 or 2 per CONTRACT."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from digest.cli import cli

CONFIG = """\
site:
  title: Example Blog
  url: https://blog.example.com
  timezone: Europe/London
email:
  from: "Example Blog <news@example.com>"
database:
  url: sqlite:///digest.db
web:
  base_url: https://news.example.com
  secret: "{secret}"
digests:
  weekly:
    lookback_days: 7
  movies:
    categories: [Movies]
"""

POST = """\
---
title: "{title}"
date: {date}
categories: [{category}]
author: Ada Lovelace
---
First paragraph of *{title}* with a [link](/about/).

The rest of the post.
"""


@pytest.fixture
def site(tmp_path: Path) -> Path:
    posts = tmp_path / "_posts"
    posts.mkdir()
    for day, slug, title, category in [
        (24, "big-news", "Big news", "News"),
        (26, "film-review", "Film review <script>x</script>", "Movies"),
    ]:
        (posts / f"2025-11-{day}-{slug}.md").write_text(
            POST.format(title=title, date=f"2025-11-{day} 09:00:00", category=category),
            encoding="utf-8",
        )
    (tmp_path / "config.yaml").write_text(CONFIG.format(secret=""), encoding="utf-8")
    return tmp_path


def run(site: Path, *args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, ["--config", str(site / "config.yaml"), "preview", *args])
    return result.exit_code, result.stdout, result.stderr


def test_preview_writes_inlined_html(site: Path) -> None:
    out = site / "preview.html"
    code, stdout, stderr = run(site, "weekly", "--as-of", "2025-11-27T12:00", "--out", str(out))
    assert code == 0, stderr
    assert stdout.startswith(f"wrote {out} (html, ")
    html = out.read_text(encoding="utf-8")
    assert "Big news" in html and "Film review &lt;script&gt;" in html
    assert 'style="' in html and "@media (prefers-color-scheme:dark)" in html
    assert 'href="https://news.example.com/unsubscribe/preview"' in html
    assert "@@DIGEST_" not in html
    assert not (site / "digest.db").exists()  # records nothing


def test_preview_text_to_stdout(site: Path) -> None:
    code, stdout, _ = run(site, "movies", "--as-of", "2025-11-27T12:00", "--text")
    assert code == 0
    assert "Film review <script>x</script>" in stdout and "Big news" not in stdout
    assert "Read more: https://blog.example.com/movies/2025/11/26/film-review.html" in stdout
    assert "Unsubscribe: https://news.example.com/unsubscribe/preview" in stdout


def test_preview_falls_back_to_latest_posts(site: Path) -> None:
    code, stdout, stderr = run(site, "weekly", "--as-of", "2026-01-15T12:00", "--text")
    assert code == 0
    assert (
        "note: nothing new for weekly as of 2026-01-15T12:00:00+00:00; "
        "previewing the latest 2 posts" in stderr
    )
    assert "Big news" in stdout


def test_preview_with_no_posts_at_all(site: Path) -> None:
    code, stdout, stderr = run(site, "weekly", "--as-of", "2020-01-01T00:00")
    assert code == 0
    assert stdout == ""
    assert "no posts in weekly as of 2020-01-01T00:00:00+00:00; nothing to preview" in stderr


def test_preview_unknown_digest_exits_2(site: Path) -> None:
    code, _, stderr = run(site, "nope")
    assert code == 2
    assert "error: unknown digest 'nope'" in stderr and "Traceback" not in stderr


def test_preview_for_a_subscriber_uses_their_share_and_a_signed_link(site: Path) -> None:
    from digest.store import open_store
    from digest.store.subscribers import add_subscriber
    from digest.tokens import UnsubscribeLink, read_unsubscribe_token

    secret = "s3cret-" + "x" * 40
    (site / "config.yaml").write_text(CONFIG.format(secret=secret), encoding="utf-8")
    store = open_store(f"sqlite:///{site / 'digest.db'}")
    row, _ = add_subscriber(store, "Film.Fan@Example.org", name="Fan <3", categories=["movies"])
    store.dispose()

    code, stdout, stderr = run(
        site, "weekly", "--as-of", "2025-11-27T12:00", "--subscriber", "film.fan@example.org"
    )
    assert code == 0, stderr
    assert "Hi Fan &lt;3," in stdout
    assert "Film review" in stdout and "Big news" not in stdout
    token = stdout.split('href="https://news.example.com/unsubscribe/', 1)[1].split('"', 1)[0]
    link = UnsubscribeLink(row.id, "weekly", row.link_key)
    assert read_unsubscribe_token(secret, token) == link


def test_preview_unknown_subscriber_exits_2(site: Path) -> None:
    code, _, stderr = run(site, "weekly", "--subscriber", "who@example.org")
    assert code == 2
    assert "error: no subscriber 'who@example.org'" in stderr
