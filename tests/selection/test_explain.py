"""`digest explain`: each post's reason in CONTRACT's order, and a subscriber's share."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from digest.cli import cli
from digest.store import open_store
from digest.store.models import RUN_FINISHED, Run, SentPost
from digest.store.preferences import pause_subscriber
from digest.store.subscribers import add_subscriber, unsubscribe
from tests.helpers.posts import write_post

AS_OF = "2025-11-28T09:00"


@pytest.fixture
def config(tmp_path: Path) -> Path:
    write_post(tmp_path, "_posts/2025-11-27-fresh.md", "title: Fresh\ncategories: [News]")
    write_post(tmp_path, "_posts/2025-11-26-sport.md", "title: Sport\ncategories: [Sport]")
    write_post(tmp_path, "_posts/2025-11-26-mixed.md", "title: Mixed\ncategories: [Sport, News]")
    write_post(tmp_path, "_posts/2025-11-25-sent.md", "title: Sent\ncategories: [News]")
    write_post(tmp_path, "_posts/2025-11-24-other.md", "title: Other\ncategories: [Cooking]")
    write_post(tmp_path, "_posts/2025-10-01-old.md", "title: Old\ncategories: [News]")
    write_post(tmp_path, "_posts/2025-12-20-later.md", "title: Later\ncategories: [News]")
    write_post(tmp_path, "_posts/2025-11-27-hidden.md", "title: Hidden\npublished: false")
    write_post(tmp_path, "_posts/2025-13-45-broken.md", "title: Broken")
    write_post(tmp_path, "_drafts/idea.md", "title: Idea\ndate: 2025-11-20")
    path = tmp_path / "config.yaml"
    path.write_text(
        """
site:
  title: Test Blog
  url: https://blog.example.com
  timezone: Europe/London
email:
  from: "Test Blog <news@example.com>"
database:
  url: sqlite:///digest.db
digests:
  weekly:
    categories: [news, sport]
    max_posts: 2
  other:
    categories: []
""",
        encoding="utf-8",
    )
    store = open_store(f"sqlite:///{tmp_path / 'digest.db'}")
    with store.session() as session:
        done = Run(digest="weekly", as_of=datetime(2025, 11, 25, 23, tzinfo=UTC))
        done.status = RUN_FINISHED
        session.add(done)
        session.flush()
        session.add(SentPost(digest="weekly", post_id="_posts/2025-11-25-sent.md", run_id=done.id))
    add_subscriber(store, "sport@example.com", categories=["Sport"])
    add_subscriber(store, "gone@example.com")
    unsubscribe(store, "gone@example.com")
    paused, _ = add_subscriber(store, "paused@example.com")
    pause_subscriber(store, paused.id, datetime(2025, 12, 10, tzinfo=UTC))
    add_subscriber(store, "elsewhere@example.com", digests=["other"])
    store.dispose()
    return path


def explain(config: Path, *args: str) -> Any:
    result = CliRunner().invoke(
        cli, ["--config", str(config), "explain", "weekly", "--as-of", AS_OF, *args]
    )
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_each_post_gets_its_first_failing_rule(config: Path) -> None:
    rows = {r["title"] or r["path"]: r for r in explain(config, "--format", "json")}
    reasons = {title: r["reason"] for title, r in rows.items()}
    assert reasons == {
        "_posts/2025-13-45-broken.md": "bad-date",
        "Idea": "draft",
        "Hidden": "unpublished",
        "Later": "future",
        "Old": "outside-lookback",
        "Other": "category",
        "Sent": "already-sent",
        "Fresh": "new",
        "Mixed": "new",
        "Sport": "over-max-posts",  # max_posts 2: the oldest new one waits
    }
    assert [title for title, r in rows.items() if r["included"]] == ["Fresh", "Mixed"]
    sent = rows["Sent"]
    assert sent["detail"].startswith("sent in run ")
    assert rows["Other"]["detail"] == "categories [Cooking] not in [news, sport]"
    fresh = rows["Fresh"]
    assert fresh["url"] == "https://blog.example.com/news/2025/11/27/fresh.html"
    assert fresh["date"] == "2025-11-27T00:00:00+00:00"
    assert fresh["path"] == "_posts/2025-11-27-fresh.md"
    assert "for_subscriber" not in fresh


def test_below_min_posts_keeps_them_new(config: Path) -> None:
    text = config.read_text().replace("max_posts: 2", "max_posts: 2\n    min_posts: 3")
    config.write_text(text)
    rows = explain(config, "--format", "json")
    below = [r["title"] for r in rows if r["reason"] == "below-min-posts"]
    assert below == ["Fresh", "Mixed"]
    assert not any(r["included"] for r in rows)


@pytest.mark.parametrize(
    ("email", "status", "reason"),
    [
        ("gone@example.com", "unsubscribed", "status"),
        ("paused@example.com", "active", "paused"),
        ("elsewhere@example.com", "active", "not-on-digest"),
    ],
)
def test_a_subscriber_who_gets_nothing_says_why(
    config: Path, email: str, status: str, reason: str
) -> None:
    out = explain(config, "--subscriber", email, "--format", "json")
    assert out["subscriber"]["status"] == status
    for row in out["posts"]:
        if row["included"]:
            assert (row["for_subscriber"], row["subscriber_reason"]) == (False, reason)
        else:
            assert (row["for_subscriber"], row["subscriber_reason"]) == (False, None)


def test_a_category_limited_subscriber_gets_their_share(config: Path) -> None:
    out = explain(config, "--subscriber", "SPORT@example.com", "--format", "json")
    assert out["subscriber"] == {
        "email": "sport@example.com",
        "status": "active",
        "digests": ["other", "weekly"],
        "categories": ["Sport"],
        "paused_until": None,
        "timezone": None,
    }
    share = {r["title"]: r["subscriber_reason"] for r in out["posts"] if r["included"]}
    assert share == {"Fresh": "category", "Mixed": None}
    assert [r["title"] for r in out["posts"] if r["for_subscriber"]] == ["Mixed"]


def test_table_and_unknown_subscriber(config: Path) -> None:
    runner = CliRunner()
    result = runner.invoke(cli, ["--config", str(config), "explain", "weekly", "--as-of", AS_OF])
    assert result.exit_code == 0, result.output
    assert "out  already-sent" in result.stdout
    assert "in   new" in result.stdout
    result = runner.invoke(
        cli, ["--config", str(config), "explain", "weekly", "--subscriber", "nobody@example.com"]
    )
    assert result.exit_code == 2
    assert result.stderr.strip() == "error: no subscriber 'nobody@example.com' in the database"
