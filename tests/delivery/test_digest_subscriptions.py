"""Per-digest subscriptions and pauses: who a run of each digest mails, one-click per digest.

Real sends to aiosmtpd, real databases (SQLite and PostgreSQL), the WSGI app called in-process.
"""

from __future__ import annotations

import csv
import json
from datetime import timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from click.testing import CliRunner

from digest.cli import cli
from digest.delivery.run import send_digest
from digest.delivery.sending import NO_RECIPIENTS
from digest.store import open_store
from digest.store.migrate import MIGRATIONS_DIR
from digest.store.models import utcnow
from digest.store.preferences import pause_subscriber, unsubscribe_from_digest
from digest.store.signups import unsubscribe_id
from digest.store.subscribers import add_subscriber, find_subscriber
from digest.web import make_app
from tests.conftest import SmtpServer
from tests.helpers.site_fixtures import AS_OF, Site, make_site
from tests.helpers.web_client import Client, path_of

TWO_DIGESTS = {
    "weekly": {"lookback_days": 7, "subject": "Weekly: {{ posts|length }}"},
    "daily": {"lookback_days": 7, "subject": "Daily: {{ posts|length }}"},
}


@pytest.fixture
def site(tmp_path: Path, migrated_database_url: str, smtp_server: SmtpServer) -> Site:
    return make_site(
        tmp_path / "site", migrated_database_url, smtp_server.port, digests=TWO_DIGESTS
    )


def subjects(server: SmtpServer, address: str) -> list[str]:
    return [str(m.message["Subject"]) for m in server.handler.to(address)]


def run_cli(site: Site, *args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, ["--config", str(site.config_path), *args])
    return result.exit_code, result.stdout, result.stderr


def test_one_click_on_the_weekly_link_keeps_daily(site: Site, smtp_server: SmtpServer) -> None:
    site.add_post("First post")
    store = site.store()
    add_subscriber(store, "both@example.com", digests=["weekly", "daily"])
    add_subscriber(store, "everything@example.com")  # every digest, the default
    settings = site.settings()
    send_digest(settings, store, "weekly", as_of=AS_OF)
    links = {}
    for address in ("both@example.com", "everything@example.com"):
        (weekly_mail,) = smtp_server.handler.to(address)
        header = str(weekly_mail.message["List-Unsubscribe"])
        links[address] = path_of(header.strip("<>").split(">")[0])
    client = Client(make_app(settings, store, mailer_thread=False))

    for path in links.values():
        answer = client.post_form(path, {"List-Unsubscribe": "One-Click"})
        assert answer.status == 200, answer.body
        assert "You still get: Daily digest." in answer.body
        assert "Unsubscribe from everything" in answer.body

    site.add_post("Second post", days_ago=0.5)
    smtp_server.handler.messages.clear()
    send_digest(settings, store, "daily", as_of=AS_OF)
    (weekly_report,) = send_digest(settings, store, "weekly", as_of=AS_OF)
    assert weekly_report.status == NO_RECIPIENTS
    for address in links:
        assert subjects(smtp_server, address) == ["Daily: 2"]
        row = find_subscriber(store, address)
        assert row is not None and row.status == "active"
        assert row.digest_names(settings.digests) == ["daily"]

    # One more click on the answer page leaves everything.
    answer = client.post_form(links["both@example.com"], {"scope": "everything"})
    assert "You are unsubscribed" in answer.body
    row = find_subscriber(store, "both@example.com")
    assert row is not None and row.status == "unsubscribed"


def test_leaving_the_last_digest_unsubscribes(site: Site) -> None:
    store = site.store()
    row, _ = add_subscriber(store, "one@example.com", digests=["weekly"])
    every = site.settings().digests
    left = unsubscribe_from_digest(store, row.id, "weekly", every_digest=every, reason="web")
    assert left is not None and left.still_on == ()
    assert left.subscriber.status == "unsubscribed"
    assert left.subscriber.digests == ("weekly",)  # kept for a resubscribe
    # A link whose digest is gone from the config (renamed) still stops the mail.
    other, _ = add_subscriber(store, "two@example.com")
    left = unsubscribe_from_digest(store, other.id, "monthly", every_digest=every, reason="web")
    assert left is not None and left.subscriber.status == "unsubscribed"
    assert unsubscribe_from_digest(store, 99999, "weekly", every_digest=every, reason="x") is None
    # Leaving everything keeps the digests chosen, for a later resubscribe.
    third, _ = add_subscriber(store, "three@example.com", digests=["daily"])
    gone = unsubscribe_id(store, third.id, third.link_key, reason="web")
    assert gone is not None and gone.status == "unsubscribed" and gone.digests == ("daily",)


def test_cli_add_import_and_list_digests(site: Site, tmp_path: Path) -> None:
    assert run_cli(site, "subscribers", "add", "a@example.com", "--digest", "daily")[0] == 0
    assert run_cli(site, "subscribers", "add", "b@example.com")[0] == 0
    code, _out, err = run_cli(site, "subscribers", "add", "c@example.com", "--digest", "monthly")
    assert code == 2
    assert "unknown digest 'monthly'" in err and "Traceback" not in err
    people = tmp_path / "people.csv"
    with people.open("w", newline="", encoding="utf-8") as handle:
        csv.writer(handle).writerows([["email"], ["d@example.com"], ["b@example.com"]])
    code, out, _ = run_cli(site, "subscribers", "import", str(people), "--digest", "weekly")
    assert code == 0 and "1 added, 1 updated" in out
    code, out, _ = run_cli(site, "subscribers", "import", str(people), "--digest", "weekly")
    assert "0 added, 0 updated, 2 unchanged" in out
    code, out, _ = run_cli(site, "subscribers", "list", "--format", "json")
    listed = {s["email"]: s for s in json.loads(out)}
    assert listed["a@example.com"]["digests"] == ["daily"]
    assert listed["b@example.com"]["digests"] == ["weekly"]
    assert listed["d@example.com"]["digests"] == ["weekly"]
    assert run_cli(site, "subscribers", "add", "a@example.com", "--all-digests")[0] == 0
    code, out, _ = run_cli(site, "subscribers", "list", "--format", "json")
    listed = {s["email"]: s for s in json.loads(out)}
    assert listed["a@example.com"]["digests"] == ["daily", "weekly"]
    assert listed["a@example.com"]["all_digests"] is True


def test_existing_subscribers_get_every_digest_after_the_migration(database_url: str) -> None:
    store = open_store(database_url, upgrade=False)
    try:
        config = Config()
        config.set_main_option("script_location", str(MIGRATIONS_DIR))
        with store.engine.begin() as connection:
            config.attributes["connection"] = connection
            command.upgrade(config, "0001")
            connection.execute(
                sa.text(
                    "INSERT INTO subscribers (email, email_key, name, categories, status,"
                    " status_changed_at, created_at, updated_at) VALUES ('old@example.com',"
                    " 'old@example.com', '', '[]', 'active', :t, :t, :t)"
                ),
                {"t": utcnow()},
            )
    finally:
        store.dispose()
    store = open_store(database_url)  # migrates to the newest revision
    try:
        row = find_subscriber(store, "old@example.com")
        assert row is not None and row.all_digests
        assert row.digest_names(["weekly", "daily"]) == ["daily", "weekly"]
    finally:
        store.dispose()


def test_a_pause_sends_nothing_then_resumes_without_a_burst(
    site: Site, smtp_server: SmtpServer
) -> None:
    store = site.store()
    settings = site.settings()
    row, _ = add_subscriber(store, "pause@example.com", digests=["weekly"])
    now = utcnow()  # a pause is wall-clock time
    pause_subscriber(store, row.id, now + timedelta(days=14))
    site.add_post("While away", days_ago=2, as_of=now)
    (report,) = send_digest(settings, store, "weekly", as_of=now)
    assert report.status == NO_RECIPIENTS
    assert smtp_server.handler.messages == []

    # The pause ends: only posts dated after it go out, not what was skipped.
    back = pause_subscriber(store, row.id, None)
    assert back is not None and back.paused_until is not None
    site.add_post("Welcome back", days_ago=-0.01, as_of=back.paused_until)
    later = back.paused_until + timedelta(hours=1)
    (report,) = send_digest(settings, store, "weekly", as_of=later)
    assert report.sent == 1
    (mail,) = smtp_server.handler.to("pause@example.com")
    text = mail.message.get_body(("plain",))
    assert text is not None
    body = str(text.get_content())
    assert "Welcome back" in body and "While away" not in body
