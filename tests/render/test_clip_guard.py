"""The clip guard: 200 posts keep the HTML part under Gmail's clip with the footer in it."""

from __future__ import annotations

import re
from pathlib import Path

from click.testing import CliRunner

from digest.cli import cli
from digest.render.renderer import Renderer
from digest.sources.post import Post
from tests.helpers.posts import AS_OF, make_post, write_config

UNSUB = "https://news.example.com/unsubscribe/abc.def"
EXCERPT = "The council met on Tuesday to discuss the [cycle lanes](/lanes/) along the river. " * 5


def two_hundred() -> list[Post]:
    return [
        make_post(
            i,
            title=f"Post {i:03d} on the council and the lanes",
            excerpt=EXCERPT,
            image=f"https://blog.example.com/img/{i}.jpg",
        )
        for i in range(200)
    ]


def test_two_hundred_posts_fit_under_100_kb_with_the_footer(tmp_path: Path) -> None:
    settings = write_config(tmp_path)
    posts = two_hundred()
    renderer = Renderer(settings)
    segment = renderer.render_segment(settings.digest("weekly"), posts, as_of=AS_OF)
    html, text = renderer.personalise(
        segment, name="Bob", email="bob@example.org", unsubscribe_url=UNSUB
    )
    size = len(html.encode("utf-8"))
    assert size < 100_000
    # The footer, with its unsubscribe link, is inside the part (nothing is clipped).
    assert f'href="{UNSUB}"' in html and html.rstrip().endswith("</html>")
    assert segment.shortened is not None
    full, listed = segment.shortened.full, segment.shortened.listed
    assert full >= 5 and full + listed == 200 and segment.shortened.unlisted == 0
    assert segment.shortened.html_bytes_before > 300_000
    # Every post is there: the first ones in full, the rest as titles with links.
    assert html.count("Read more") == full
    for post in posts:
        assert f'href="{post.url}"' in html
    assert "More new posts" in html
    assert "here are 200 new posts" in html and segment.subject.endswith("200 new posts")
    assert text.count("Post 1") >= 100  # the text part keeps every post in full


def test_with_the_archive_on_the_rest_is_and_n_more(tmp_path: Path) -> None:
    settings = write_config(
        tmp_path, extra="web:\n  base_url: https://news.example.com\n  archive: true\n"
    )
    renderer = Renderer(settings)
    view = "https://news.example.com/archive/weekly/7"
    segment = renderer.render_segment(
        settings.digest("weekly"), two_hundred(), as_of=AS_OF, view_url=view
    )
    html, _ = renderer.personalise(segment, name="", email="a@example.org", unsubscribe_url=UNSUB)
    assert segment.shortened is not None
    assert segment.shortened.listed == 0
    more = segment.shortened.unlisted
    assert segment.shortened.full + more == 200 and more > 100
    assert re.search(rf'<a href="{view}"[^>]*>and {more} more', html)
    assert len(html.encode("utf-8")) < 100_000 and f'href="{UNSUB}"' in html


def test_a_small_digest_is_not_shortened(tmp_path: Path) -> None:
    settings = write_config(tmp_path)
    renderer = Renderer(settings)
    segment = renderer.render_segment(settings.digest("weekly"), two_hundred()[:5], as_of=AS_OF)
    assert segment.shortened is None and "More new posts" not in segment.html


def test_preview_says_the_size_and_what_was_shortened(tmp_path: Path) -> None:
    settings = write_config(tmp_path)
    config = settings.source.read_text(encoding="utf-8")
    config = config.replace("  weekly: {}", "  weekly: {max_posts: 200}")
    settings.source.write_text(config, encoding="utf-8")
    for i in range(200):
        (tmp_path / "_posts" / f"2025-11-2{1 + i % 7}-post-{i}.md").write_text(
            f"---\ntitle: Post {i}\n---\n{EXCERPT}\n", encoding="utf-8"
        )
    out = tmp_path / "preview.html"
    result = CliRunner().invoke(
        cli,
        [
            *("--config", str(settings.source), "preview", "weekly"),
            *("--as-of", "2025-11-27T12:00", "--out", str(out)),
        ],
    )
    assert result.exit_code == 0, result.output
    note = re.search(
        r"note: html part ([\d,]+) bytes; shortened: (\d+) in full, (\d+) as titles", result.stderr
    )
    assert note is not None, result.stderr
    assert int(note.group(1).replace(",", "")) < 100_000
    assert int(note.group(2)) + int(note.group(3)) == 200
    assert "Unsubscribe" in out.read_text(encoding="utf-8")
