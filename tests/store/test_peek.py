"""store.peek: the sent posts read from an SQLite file without SQLAlchemy agree with the store,
and every case peek cannot answer falls back to the store (which migrates), never to a guess."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime
from pathlib import Path

import pytest
from alembic import command

from digest.selection.newposts import new_posts_in
from digest.settings import DigestSettings
from digest.store import Store, open_store, peek
from digest.store.migrate import _config as migrate_config
from digest.store.models import RUN_FINISHED, Run, SentPost
from digest.store.peek import head_revision
from digest.store.runs import sent_post_ids
from tests.helpers.posts import make_post

AS_OF = datetime(2025, 11, 28, 9, tzinfo=UTC)


def _sent(store: Store, digest: str, *post_ids: str) -> None:
    with store.session() as session:
        done = Run(digest=digest, as_of=AS_OF, status=RUN_FINISHED)
        session.add(done)
        session.flush()
        session.add_all(SentPost(digest=digest, post_id=p, run_id=done.id) for p in post_ids)


def test_peek_agrees_with_the_store(sqlite_store: Store) -> None:
    _sent(sqlite_store, "weekly", "_posts/a.md", "_posts/ü ' b.md")
    _sent(sqlite_store, "news", "_posts/c.md")
    for digest in ("weekly", "news", "daily"):
        with sqlite_store.session() as session:
            expected = sent_post_ids(session, digest)
        assert peek.sent_post_ids(sqlite_store.url, digest) == expected
    assert peek.sent_post_ids(sqlite_store.url, "weekly") == {"_posts/a.md", "_posts/ü ' b.md"}


def test_no_database_yet_is_nothing_sent_and_creates_no_file(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'digest.db'}"
    assert peek.sent_post_ids(url, "weekly") == set()
    assert not (tmp_path / "digest.db").exists()


@pytest.mark.parametrize(
    "url",
    [
        "postgresql://postgres@127.0.0.1:5432/test",
        "sqlite://",
        "sqlite:///relative.db",
        "sqlite:////tmp/digest.db?mode=ro",
        "sqlite:////tmp/50%25.db",
    ],
)
def test_urls_peek_leaves_to_the_store(url: str) -> None:
    assert peek.sent_post_ids(url, "weekly") is None


def test_an_older_schema_goes_to_the_store_which_migrates(sqlite_url: str) -> None:
    """A database one revision behind (0012): peek declines, new_posts_in opens the store,
    which migrates it to the newest revision and reads the posts the old schema holds."""
    posts = [make_post(1, categories=()), make_post(2, categories=())]
    old = open_store(sqlite_url, upgrade=False)
    with old.engine.connect() as conn, conn.begin():
        command.upgrade(migrate_config(conn), "0012")
        conn.exec_driver_sql(
            "INSERT INTO runs (id, digest, as_of, started_at, status, post_ids, trigger) "
            "VALUES (1, 'weekly', '2025-11-27 09:00:00', '2025-11-27 09:00:00', 'finished', "
            f"'[\"{posts[0].id}\"]', 'manual')"
        )
        conn.exec_driver_sql(
            "INSERT INTO sent_posts (digest, post_id, run_id) "
            f"VALUES ('weekly', '{posts[0].id}', 1)"
        )
    old.dispose()
    assert peek.sent_post_ids(sqlite_url, "weekly") is None  # 0012 is not the newest

    digest = DigestSettings(name="weekly", lookback_days=30)
    chosen = new_posts_in(sqlite_url, digest, posts, AS_OF)
    assert [p.id for p in chosen] == [posts[1].id]
    with sqlite3.connect(sqlite_url.removeprefix("sqlite:///")) as db:
        assert db.execute("SELECT version_num FROM alembic_version").fetchall() == [
            (head_revision(),)
        ]
    assert peek.sent_post_ids(sqlite_url, "weekly") == {posts[0].id}  # now it can look


def test_a_file_that_is_no_database_goes_to_the_store(tmp_path: Path) -> None:
    (tmp_path / "digest.db").write_bytes(b"not a database" * 100)
    url = f"sqlite:///{tmp_path / 'digest.db'}"
    assert peek.sent_post_ids(url, "weekly") is None


def test_new_posts_in_on_postgresql_asks_the_store(store: Store) -> None:
    posts = [make_post(1, categories=()), make_post(2, categories=())]
    _sent(store, "weekly", posts[0].id)
    digest = DigestSettings(name="weekly", lookback_days=30)
    assert [p.id for p in new_posts_in(store.url, digest, posts, AS_OF)] == [posts[1].id]


def test_the_store_is_untouched_by_a_peek(sqlite_store: Store) -> None:
    _sent(sqlite_store, "weekly", "_posts/a.md")
    path = Path(sqlite_store.url.removeprefix("sqlite:///"))
    sqlite_store.dispose()
    before = path.read_bytes()
    assert peek.sent_post_ids(sqlite_store.url, "weekly") == {"_posts/a.md"}
    assert path.read_bytes() == before
    reopened = open_store(sqlite_store.url)
    reopened.dispose()
