"""`digest send`, `send-test` and `history` through the CLI: exit codes and messages."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from digest.cli import cli
from tests.conftest import SmtpServer, free_port, sqlite_only
from tests.helpers.site_fixtures import AS_OF, Site, add_subscribers, make_site
from tests.helpers.store_rows import table_counts

# What the CLI says and returns is under test here; sending on both databases is test_delivery's.
pytestmark = sqlite_only

AS_OF_TEXT = AS_OF.isoformat()


@pytest.fixture
def site(tmp_path: Path, migrated_database_url: str, smtp_server: SmtpServer) -> Site:
    site = make_site(tmp_path / "site", migrated_database_url, smtp_server.port)
    site.add_post("Rust Tips", categories=["Engineering"])
    site.add_post("Book Fair", categories=["Culture"], days_ago=2)
    store = site.store()
    add_subscribers(
        store,
        [
            ("all@example.com", []),
            ("eng@example.com", ["Engineering"]),
            ("sport@example.com", ["Sport"]),
            ("nobody@example.com", []),
        ],
    )
    store.dispose()
    return site


def invoke(site: Site, *args: str) -> Result:
    return CliRunner().invoke(cli, ["--config", str(site.config_path), *args])


def test_send_prints_a_summary_and_exits_0_with_a_bounce(
    site: Site, smtp_server: SmtpServer
) -> None:
    smtp_server.handler.permanent["nobody@example.com"] = "550 5.1.1 No such user"
    result = invoke(site, "send", "weekly", "--as-of", AS_OF_TEXT)
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == [
        "weekly: run 1 as of 2026-11-27T09:00:00+00:00: 2 posts, 2 sent, 1 failed (bounced), "
        "0 pending"
    ]
    again = invoke(site, "send", "weekly", "--as-of", AS_OF_TEXT)
    assert again.exit_code == 0
    assert (
        again.stdout.strip() == "weekly: no new posts as of 2026-11-27T09:00:00+00:00; nothing sent"
    )
    assert len(smtp_server.handler.messages) == 2


def test_unknown_digest_exits_2(site: Site) -> None:
    for args in (("send", "monthly"), ("send-test", "monthly", "--to", "a@example.com")):
        result = invoke(site, *args)
        assert result.exit_code == 2
        assert "unknown digest 'monthly'" in result.stderr
        assert "Traceback" not in result.output


def test_dry_run_changes_nothing(site: Site, smtp_server: SmtpServer) -> None:
    store = site.store()
    with store.session() as session:
        before = table_counts(session)
    result = invoke(site, "send", "weekly", "--dry-run", "--as-of", AS_OF_TEXT)
    assert result.exit_code == 0, result.output
    assert "2 new posts:" in result.stdout
    assert "would send 3 messages; 1 active subscriber has no new posts" in result.stdout
    with store.session() as session:
        assert table_counts(session) == before
    assert smtp_server.handler.messages == []
    store.dispose()


def test_send_test_records_nothing_and_posts_stay_new(site: Site, smtp_server: SmtpServer) -> None:
    result = invoke(site, "send-test", "weekly", "--to", "me@example.com", "--as-of", AS_OF_TEXT)
    assert result.exit_code == 0, result.output
    assert "test sent to me@example.com: 2 posts (new posts)" in result.stdout
    (msg,) = smtp_server.handler.messages
    assert str(msg.message["Subject"]).startswith("[TEST] ")
    history = invoke(site, "history", "--format", "json")
    assert history.exit_code == 0 and json.loads(history.stdout) == []
    sent = invoke(site, "send", "weekly", "--as-of", AS_OF_TEXT)
    assert "2 posts, 3 sent" in sent.stdout


def test_send_test_invalid_address_exits_2(site: Site, smtp_server: SmtpServer) -> None:
    result = invoke(site, "send-test", "weekly", "--to", "not-an-address")
    assert result.exit_code == 2
    assert result.stderr.startswith("error: --to: ")
    assert smtp_server.handler.messages == []


def test_send_test_refused_exits_1_with_the_reply(site: Site, smtp_server: SmtpServer) -> None:
    smtp_server.handler.permanent["me@example.com"] = "550 5.1.1 No such user"
    result = invoke(site, "send-test", "weekly", "--to", "me@example.com", "--as-of", AS_OF_TEXT)
    assert result.exit_code == 1
    assert "550" in result.stderr and "me@example.com" in result.stderr


def test_history_json_fields(site: Site) -> None:
    assert invoke(site, "send", "weekly", "--as-of", AS_OF_TEXT).exit_code == 0
    result = invoke(site, "history", "weekly", "--format", "json")
    assert result.exit_code == 0, result.output
    (run,) = json.loads(result.stdout)
    for key in ("digest", "as_of", "started_at", "finished_at", "status", "posts", "sent"):
        assert key in run
    assert (run["digest"], run["status"], run["posts"], run["sent"], run["failed"]) == (
        "weekly",
        "finished",
        2,
        3,
        0,
    )
    assert run["pending"] == 0
    assert run["as_of"] == "2026-11-27T09:00:00+00:00"
    table = invoke(site, "history")
    assert table.exit_code == 0
    assert table.stdout.splitlines()[0].split()[:3] == ["id", "digest", "as_of"]
    assert "finished" in table.stdout


def test_smtp_down_exits_1_naming_host_and_port(
    tmp_path: Path, migrated_database_url: str, smtp_server: SmtpServer
) -> None:
    port = free_port()
    site = make_site(tmp_path / "down", migrated_database_url, port)
    site.add_post("Hello")
    store = site.store()
    add_subscribers(store, [("a@example.com", []), ("b@example.com", [])])
    store.dispose()
    result = invoke(site, "send", "weekly", "--as-of", AS_OF_TEXT)
    assert result.exit_code == 1
    assert f"127.0.0.1:{port}" in result.stderr
    assert "Traceback" not in result.output
    assert result.stderr.startswith("error: ")
    (run,) = json.loads(invoke(site, "history", "--format", "json").stdout)
    assert (run["sent"], run["pending"]) == (0, 2)

    up = make_site(tmp_path / "down", migrated_database_url, smtp_server.port)
    result = invoke(up, "send", "weekly", "--as-of", AS_OF_TEXT)
    assert result.exit_code == 0, result.output
    assert "finished run 1" in result.stdout and "2 sent" in result.stdout
    assert len(smtp_server.handler.messages) == 2


def test_missing_secret_exits_2(
    tmp_path: Path, migrated_database_url: str, smtp_server: SmtpServer
) -> None:
    site = make_site(tmp_path / "s", migrated_database_url, smtp_server.port, secret="")
    site.add_post("Hello")
    result = invoke(site, "send", "weekly", "--as-of", AS_OF_TEXT)
    assert result.exit_code == 2
    assert "web.secret" in result.stderr and "DIGEST_SECRET" in result.stderr


OLD_TITLES = ["Alpha", "Bravo", "Charlie", "Delta", "Echo", "Foxtrot", "Golf"]


@pytest.mark.parametrize("max_posts", [3, 20])
def test_send_test_and_preview_show_the_same_posts_when_nothing_is_new(
    tmp_path: Path, migrated_database_url: str, smtp_server: SmtpServer, max_posts: int
) -> None:
    digests = {"weekly": {"lookback_days": 7, "min_posts": 1, "max_posts": max_posts}}
    site = make_site(tmp_path / "site", migrated_database_url, smtp_server.port, digests=digests)
    for days_ago, title in enumerate(OLD_TITLES, start=10):  # all older than the lookback
        site.add_post(title, days_ago=days_ago)
    site.add_post("Future Day", days_ago=-1)  # dated after --as-of: never shown

    def titles_in(text: str) -> list[str]:
        return sorted((t for t in OLD_TITLES if t in text), key=text.index)

    sent = invoke(site, "send-test", "weekly", "--to", "me@example.com", "--as-of", AS_OF_TEXT)
    preview = invoke(site, "preview", "weekly", "--text", "--as-of", AS_OF_TEXT)

    assert sent.exit_code == 0, sent.output
    assert preview.exit_code == 0, preview.output
    (msg,) = smtp_server.handler.messages
    body = msg.message.get_body(("plain",))
    assert body is not None
    expected = OLD_TITLES[:max_posts]  # the latest first, at most max_posts
    shown = f"{len(expected)} posts"
    assert f"test sent to me@example.com: {shown} (latest posts (nothing is new))" in sent.stdout
    assert titles_in(body.get_content()) == expected
    assert titles_in(preview.stdout) == expected
    assert f"previewing the latest {shown}" in preview.stderr
    assert "Future Day" not in body.get_content() + preview.stdout
