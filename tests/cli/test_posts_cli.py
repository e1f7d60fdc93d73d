"""`digest posts`: new posts for a digest, --all, json fields, warnings, sent posts left out."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from click.testing import CliRunner

from digest.cli import cli
from digest.store import open_store
from digest.store.models import RUN_FINISHED, Run, SentPost
from digest.store.runs import sent_post_ids
from tests.helpers.posts import write_post

AS_OF = "2025-11-28T09:00"


@pytest.fixture
def config(tmp_path: Path) -> Path:
    write_post(
        tmp_path,
        "_posts/2025-11-27-big-news.md",
        'title: "Big News: it happened"\ndate: 2025-11-27T22:18:56\ncategories: [News]\n'
        "tags: [world]\nauthor: Jane\nimage: assets/images/big.jpg",
    )
    write_post(
        tmp_path, "_posts/2025-11-26-match-report.md", "title: Match report\ncategory: Sport"
    )
    write_post(tmp_path, "_posts/2025-10-01-old.md", "title: Old\ncategories: News")
    write_post(tmp_path, "_posts/2025-11-27-hidden.md", "title: Hidden\npublished: false")
    write_post(tmp_path, "_drafts/idea.md", "title: Idea\ndate: 2025-11-20")
    path = tmp_path / "config.yaml"
    path.write_text(
        """
site:
  title: Test Blog
  url: https://blog.example.com
  baseurl: /b
  timezone: Europe/London
email:
  from: "Test Blog <news@example.com>"
database:
  url: sqlite:///digest.db
digests:
  weekly:
    categories: []
  news:
    categories: [news]
""",
        encoding="utf-8",
    )
    return path


def run(config: Path, *args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, ["--config", str(config), "posts", *args])
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    return result.exit_code, result.stdout, result.stderr


def test_json_fields_and_absolute_urls(config: Path) -> None:
    code, out, err = run(config, "--as-of", AS_OF, "--format", "json")
    assert code == 0, err
    rows = json.loads(out)
    assert [r["title"] for r in rows] == ["Big News: it happened", "Match report"]
    big = rows[0]
    assert big["date"] == "2025-11-27T22:18:56+00:00"
    assert big["categories"] == ["News"]
    assert big["tags"] == ["world"]
    assert big["url"] == "https://blog.example.com/b/news/2025/11/27/big-news.html"
    assert big["path"] == "_posts/2025-11-27-big-news.md"
    assert big["id"] == big["path"]
    assert big["author"] == "Jane"
    assert big["excerpt"] == "Intro."
    assert big["image"] == "https://blog.example.com/b/assets/images/big.jpg"
    assert big["published"] is True and big["draft"] is False


def test_digest_categories_filter(config: Path) -> None:
    code, out, _err = run(config, "--digest", "news", "--as-of", AS_OF, "--format", "json")
    assert code == 0
    assert [r["title"] for r in json.loads(out)] == ["Big News: it happened"]


def test_as_of_moves_the_window(config: Path) -> None:
    code, out, _err = run(config, "--as-of", "2025-11-27T12:00", "--format", "json")
    assert code == 0
    assert [r["title"] for r in json.loads(out)] == ["Match report"]


def test_table_format(config: Path) -> None:
    code, out, _err = run(config, "--as-of", AS_OF)
    assert code == 0
    assert "Big News: it happened" in out
    assert "https://blog.example.com/b/news/2025/11/27/big-news.html" in out
    assert "Old" not in out


def test_nothing_new_says_so(config: Path) -> None:
    code, out, _err = run(config, "--as-of", "2026-06-01T09:00")
    assert code == 0
    assert out.startswith("no new posts for digest weekly")
    code, out, _err = run(config, "--as-of", "2026-06-01T09:00", "--format", "json")
    assert json.loads(out) == []


def test_all_lists_every_post_with_status(config: Path) -> None:
    code, out, _err = run(config, "--all", "--as-of", "2025-11-27T12:00", "--format", "json")
    assert code == 0
    status = {r["title"]: r["status"] for r in json.loads(out)}
    assert status == {
        "Big News: it happened": "future",
        "Hidden": "unpublished",
        "Match report": "published",
        "Old": "published",
    }
    code, out, _err = run(config, "--all", "--drafts", "--format", "json")
    assert {r["title"]: r["status"] for r in json.loads(out)}["Idea"] == "draft"


def test_malformed_post_warns_and_exits_0(config: Path) -> None:
    write_post(config.parent, "_posts/2025-11-27-broken.md", "title: [unclosed")
    code, out, err = run(config, "--as-of", AS_OF, "--format", "json")
    assert code == 0
    broken = config.parent / "_posts/2025-11-27-broken.md"
    assert err.startswith(f"warning: {broken}: front matter is not valid YAML")
    assert len(json.loads(out)) == 2


def test_posts_sent_by_earlier_runs_are_left_out(config: Path) -> None:
    store = open_store(f"sqlite:///{config.parent / 'digest.db'}")
    with store.session() as session:
        done = Run(
            digest="weekly", as_of=datetime(2025, 11, 27, 23, tzinfo=UTC), status=RUN_FINISHED
        )
        session.add(done)
        session.flush()
        session.add(
            SentPost(digest="weekly", post_id="_posts/2025-11-27-big-news.md", run_id=done.id)
        )
    with store.session() as session:
        assert sent_post_ids(session, "weekly") == {"_posts/2025-11-27-big-news.md"}
        assert sent_post_ids(session, "news") == set()
    store.dispose()

    code, out, _err = run(config, "--as-of", AS_OF, "--format", "json")
    assert code == 0
    assert [r["title"] for r in json.loads(out)] == ["Match report"]
    # Another digest has its own memory.
    code, out, _err = run(config, "--digest", "news", "--as-of", AS_OF, "--format", "json")
    assert [r["title"] for r in json.loads(out)] == ["Big News: it happened"]


def test_unknown_digest_exits_2(config: Path) -> None:
    code, _out, err = run(config, "--digest", "daily")
    assert code == 2
    assert "unknown digest 'daily'" in err


def test_missing_config_exits_2(tmp_path: Path) -> None:
    code, _out, err = run(tmp_path / "nope.yaml")
    assert code == 2
    assert err.startswith(f"error: {tmp_path / 'nope.yaml'}: config file not found")
    assert "Traceback" not in err


def test_bad_as_of_exits_2(config: Path) -> None:
    code, _out, err = run(config, "--as-of", "yesterday")
    assert code == 2
    assert "--as-of" in err
