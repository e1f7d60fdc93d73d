"""Hostile or unlucky post files: each is one short warning, and the other posts still go out."""

from __future__ import annotations

import logging
import os
import resource
import subprocess
from pathlib import Path

import pytest

from digest.errors import BadDateError
from digest.sources.jekyll.reader import load_posts
from tests.conftest import SmtpServer
from tests.helpers.processes import digest_script
from tests.helpers.site_fixtures import AS_OF, Site, add_subscribers, make_site

MAX_POST_PROBLEM = 300  # characters in one warning about a post

# 420 bytes of YAML whose `tags:` expand to 9**9 (387 million) strings.
ALIAS_BOMB = (
    "---\n"
    "title: Laughs\n"
    "date: 2026-11-26 08:00:00 +0000\n"
    'a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]\n'
    "b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]\n"
    "c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]\n"
    "d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]\n"
    "e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]\n"
    "f: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]\n"
    "g: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f]\n"
    "h: &h [*g,*g,*g,*g,*g,*g,*g,*g,*g]\n"
    "tags: [*h,*h,*h,*h,*h,*h,*h,*h,*h]\n"
    "---\n"
    "Ha. Ha. Ha. Ha. Ha. Ha.\n"
)


def hostile_files(posts: Path) -> dict[str, str]:
    """Write the alias bomb, a symlink to /dev/zero and a FIFO; file name -> expected words."""
    assert len(ALIAS_BOMB.encode()) == 420
    (posts / "2026-11-26-laughs.md").write_text(ALIAS_BOMB, encoding="utf-8")
    (posts / "2026-11-26-zero.md").symlink_to("/dev/zero")
    os.mkfifo(posts / "2026-11-26-x.md")
    return {
        "2026-11-26-laughs.md": "YAML aliases",
        "2026-11-26-zero.md": "symlink to a character device",
        "2026-11-26-x.md": "FIFO",
    }


def test_send_skips_each_hostile_post_with_one_short_warning_and_sends_the_others(
    tmp_path: Path, migrated_sqlite_url: str, smtp_server: SmtpServer
) -> None:
    site = make_site(tmp_path / "site", migrated_sqlite_url, smtp_server.port)
    site.add_post("Good News")
    site.add_post("More News", days_ago=2)
    expected = hostile_files(site.root / "_posts")
    store = site.store()
    add_subscribers(store, [("ana@example.com", []), ("ben@example.com", [])])
    store.dispose()

    result = _send(site)

    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    warnings = [line for line in result.stderr.splitlines() if line.startswith("warning:")]
    assert len(warnings) == 3, result.stderr
    for name, words in expected.items():
        (line,) = [w for w in warnings if name in w]
        assert words in line
        assert len(line) <= MAX_POST_PROBLEM + 40
    assert len(smtp_server.handler.messages) == 2
    for received in smtp_server.handler.messages:
        body = received.message.get_body(("plain",))
        assert body is not None
        text = body.get_content()
        assert "Good News" in text and "More News" in text and "Laughs" not in text


def _send(site: Site) -> subprocess.CompletedProcess[str]:
    """`digest send` as a user runs it, in a process that may not grow past 1 GB."""

    def limit_memory() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30))

    env = {k: v for k, v in os.environ.items() if not k.startswith("DIGEST_")}
    args = ["--config", str(site.config_path), "send", "weekly", "--as-of", AS_OF.isoformat()]
    return subprocess.run(
        [digest_script(), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,  # the FIFO used to hang the run for ever
        preexec_fn=limit_memory,
        check=False,
    )


def test_a_post_over_max_post_bytes_is_skipped_with_a_warning(tmp_path: Path) -> None:
    site = make_site(tmp_path / "site", "sqlite://", 25, extra={"site": {"max_post_bytes": 2048}})
    site.add_post("Small")
    big = site.add_post("Big", body="word " * 1000)
    loaded = load_posts(site.settings().site)
    assert [p.title for p in loaded.posts] == ["Small"]
    (problem,) = loaded.problems
    assert problem.path == str(site.root / big)
    assert problem.reason == "file is larger than site.max_post_bytes (2,048 bytes); not read"


def test_a_symlink_to_a_regular_post_is_read(tmp_path: Path) -> None:
    site = make_site(tmp_path / "site", "sqlite://", 25)
    post_id = site.add_post("Elsewhere")
    real = tmp_path / "kept-elsewhere.md"
    (site.root / post_id).rename(real)
    (site.root / post_id).symlink_to(real)
    loaded = load_posts(site.settings().site)
    assert [p.title for p in loaded.posts] == ["Elsewhere"]
    assert loaded.problems == ()


@pytest.mark.parametrize(
    "front",
    [
        "title: [" + ", ".join(["long words here"] * 2000) + "]",
        "title: Fine\ntags: [[" + "x" * 5000 + "]]",
    ],
)
def test_every_post_warning_is_one_short_line(tmp_path: Path, front: str) -> None:
    site = make_site(tmp_path / "site", "sqlite://", 25)
    path = site.root / "_posts" / "2026-11-26-bad.md"
    path.write_text(f"---\n{front}\n---\nBody\n", encoding="utf-8")
    (problem,) = load_posts(site.settings().site).problems
    assert len(problem.message) <= MAX_POST_PROBLEM
    assert problem.message.startswith(f"{path}: ")
    assert problem.message.endswith("…")
    assert "\n" not in problem.message


def test_an_unreadable_long_date_is_one_short_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # Jekyll stops its build on a date it cannot read; the post is listed as bad-date, with
    # one capped problem line (the CLI prints it as the one warning).
    site = make_site(tmp_path / "site", "sqlite://", 25)
    path = site.root / "_posts" / "2026-11-26-bad.md"
    path.write_text("---\ntitle: Fine\ndate: '" + "9" * 5000 + "'\n---\nBody\n", encoding="utf-8")
    with caplog.at_level(logging.WARNING, logger="digest"):
        loaded = load_posts(site.settings().site)
    assert [r for r in caplog.records if r.levelno == logging.WARNING] == []
    (problem,) = loaded.problems
    assert isinstance(problem, BadDateError) and problem.title == "Fine"
    assert len(problem.message) <= MAX_POST_PROBLEM
    assert "\n" not in problem.message


def test_a_recursive_alias_is_refused(tmp_path: Path) -> None:
    site = make_site(tmp_path / "site", "sqlite://", 25)
    path = site.root / "_posts" / "2026-11-26-loop.md"
    path.write_text("---\ntitle: Loop\ntags: &t [a, *t]\n---\nBody\n", encoding="utf-8")
    (problem,) = load_posts(site.settings().site).problems
    assert (
        problem.reason
        == "front matter refused: a YAML alias refers to itself (front matter line 3)"
    )


def test_a_few_aliases_still_work(tmp_path: Path) -> None:
    site = make_site(tmp_path / "site", "sqlite://", 25)
    path = site.root / "_posts" / "2026-11-26-aliases.md"
    text = "---\ntitle: Shared\nbase: &base [one, two]\ntags: *base\ncategories: *base\n---\nBody\n"
    path.write_text(text, encoding="utf-8")
    (post,) = load_posts(site.settings().site).posts
    assert post.tags == ("one", "two") and post.categories == ("one", "two")
