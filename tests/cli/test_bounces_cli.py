"""`digest bounces`: the samples through click's runner, the console script as an MTA pipe, IMAP."""

from __future__ import annotations

import json
import mailbox
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from click.testing import CliRunner, Result

from digest.bounces.policy import NOT_A_REPORT
from digest.cli import cli
from digest.store import open_store
from tests.conftest import sqlite_only
from tests.helpers.bounce_config import SECRET, write_config
from tests.helpers.bounce_fixtures import (
    EXPECTED_COUNTS,
    EXPECTED_STATUS,
    sample,
    sample_names,
    statuses,
)
from tests.helpers.imap_fixtures import PASSWORD, USER, Dovecot, running_dovecot


@pytest.fixture
def config(tmp_path: Path, migrated_database_url: str) -> Path:
    return write_config(tmp_path, migrated_database_url)


def run(config: Path, *args: str, input: bytes | None = None) -> Result:
    return CliRunner().invoke(cli, ["--config", str(config), *args], input=input)


def _statuses(database_url: str) -> dict[str, str]:
    store = open_store(database_url)
    try:
        return statuses(store)
    finally:
        store.dispose()


def test_a_maildir_twice_json_counts(
    config: Path, tmp_path: Path, migrated_database_url: str
) -> None:
    box = mailbox.Maildir(tmp_path / "Maildir", create=True)
    for name in sample_names():
        box.add(sample(name))
    result = run(config, "bounces", str(tmp_path / "Maildir"), "--format", "json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == {**EXPECTED_COUNTS, "reasons": {NOT_A_REPORT: 2}}
    assert _statuses(migrated_database_url) == EXPECTED_STATUS
    again = run(config, "bounces", str(tmp_path / "Maildir"))
    assert again.exit_code == 0, again.output
    assert again.stdout == (
        "read 8 messages: 0 hard, 0 soft, 0 complaints, 0 unmatched, 0 ignored, 8 seen before\n"
    )
    assert _statuses(migrated_database_url) == EXPECTED_STATUS


@sqlite_only
def test_one_message_on_stdin(config: Path, migrated_database_url: str) -> None:
    result = run(config, "bounces", "-", input=sample("arf-complaint.eml"))
    assert result.exit_code == 0, result.output
    assert result.stdout == (
        "read 1 message: 0 hard, 0 soft, 1 complaint, 0 unmatched, 0 ignored, 0 seen before\n"
    )
    assert _statuses(migrated_database_url)["erin@example.com"] == "unsubscribed"


def test_the_console_script_as_an_mta_pipe(tmp_path: Path, migrated_sqlite_url: str) -> None:
    config = write_config(tmp_path, migrated_sqlite_url)
    script = Path(sys.executable).parent / "digest"
    for name in ("postfix-dsn.eml", "exim-bounce.eml"):
        done = subprocess.run(
            [str(script), "--config", str(config), "bounces", "-"],
            input=b"From MAILER-DAEMON  Sat Nov 28 09:12:03 2026\n" + sample(name),
            capture_output=True,
            check=False,
            env={**os.environ, "DIGEST_CONFIG": ""},
        )
        assert done.returncode == 0, done.stderr
        assert done.stderr == b""
    assert _statuses(migrated_sqlite_url)["alice@example.net"] == "bounced"
    assert _statuses(migrated_sqlite_url)["bob@example.org"] == "bounced"


@sqlite_only
def test_no_source_and_no_imap_is_one_clear_error(config: Path) -> None:
    result = run(config, "bounces")
    assert result.exit_code == 2
    assert result.stderr == (
        f"error: no SOURCE given and bounces.imap is not set in {config}: "
        "give a Maildir folder, an mbox file or - for stdin\n"
    )


@sqlite_only
def test_a_missing_source_is_one_clear_error(config: Path, tmp_path: Path) -> None:
    result = run(config, "bounces", str(tmp_path / "nope"))
    assert result.exit_code == 2
    assert result.stderr == f"error: {tmp_path / 'nope'}: no such Maildir folder or mbox file\n"


def test_verp_needs_the_web_secret(tmp_path: Path, migrated_sqlite_url: str) -> None:
    config = write_config(tmp_path, migrated_sqlite_url, verp=True)
    config.write_text(config.read_text().replace(f"  secret: {SECRET}\n", "  secret: ''\n"))
    result = run(config, "bounces", "-", input=sample("postfix-dsn.eml"))
    assert result.exit_code == 2
    assert result.stderr.startswith("error: web.secret is empty")


@pytest.fixture(scope="module")
def dovecot() -> Iterator[Dovecot]:
    with running_dovecot() as server:
        yield server


def _imap_config(folder: Path, url: str, server: Dovecot, password: str, mailbox: str) -> Path:
    extra = (
        "bounces:\n"
        "  imap:\n"
        f"    host: {server.host}\n"
        f"    port: {server.port}\n"
        f"    username: {USER}\n"
        f"    password: {password}\n"
        f"    folder: {mailbox}\n"
        f"    ca_file: {server.ca_file}\n"
    )
    return write_config(folder, url, extra)


def test_imap_from_the_config(tmp_path: Path, migrated_sqlite_url: str, dovecot: Dovecot) -> None:
    client = dovecot.client()
    try:
        client.create("Cli")
        for name in sample_names():
            client.append("Cli", None, None, sample(name).replace(b"\n", b"\r\n"))
    finally:
        client.logout()
    config = _imap_config(tmp_path, migrated_sqlite_url, dovecot, PASSWORD, "Cli")
    result = run(config, "bounces", "--format", "json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == {**EXPECTED_COUNTS, "reasons": {NOT_A_REPORT: 2}}
    assert _statuses(migrated_sqlite_url) == EXPECTED_STATUS
    again = run(config, "bounces", "--format", "json")
    assert json.loads(again.stdout)["read"] == 0


def test_imap_refusal_is_one_line_without_the_password(
    tmp_path: Path, migrated_sqlite_url: str, dovecot: Dovecot
) -> None:
    config = _imap_config(tmp_path, migrated_sqlite_url, dovecot, "not-the-password-987", "INBOX")
    result = run(config, "bounces")
    assert result.exit_code == 1
    assert result.stderr == (
        f"error: IMAP 127.0.0.1:{dovecot.port}: login refused for user {USER}\n"
    )
    assert "not-the-password-987" not in result.output


@sqlite_only
def test_subscribers_list_says_why_and_when(config: Path, migrated_database_url: str) -> None:
    run(config, "bounces", "-", input=sample("postfix-dsn.eml"))
    run(config, "bounces", "-", input=sample("arf-complaint.eml"))
    listed = json.loads(run(config, "subscribers", "list", "--format", "json").stdout)
    by_email = {row["email"]: row for row in listed}
    alice, erin = by_email["alice@example.net"], by_email["erin@example.com"]
    assert alice["status"] == "bounced"
    assert alice["status_reason"] == (
        "hard bounce (mail) 5.1.1: smtp; 550 5.1.1 <alice@example.net>: Recipient address "
        "rejected: User unknown in virtual mailbox table"
    )
    assert erin["status_reason"] == "complaint (mail): abuse report (SomeGenerator/1.0)"
    assert str(alice["status_changed_at"]).endswith("+00:00")
    table = run(config, "subscribers", "list", "--status", "bounced").stdout.splitlines()
    assert "hard bounce (mail) 5.1.1: smtp; 550 5.1.1 <alice@example.net>" in table[1]
    assert table[1].endswith("…")


def test_erasing_a_subscriber_erases_their_bounce_texts(
    config: Path, migrated_database_url: str
) -> None:
    run(config, "bounces", "-", input=sample("postfix-dsn.eml"))
    assert run(config, "subscribers", "remove", "alice@example.net").exit_code == 0
    store = open_store(migrated_database_url)
    try:
        with store.session() as session:
            rows = session.execute(sa.text("SELECT subscriber_id, reason FROM bounce_events"))
            assert [tuple(r) for r in rows] == [(None, None)]
    finally:
        store.dispose()


def test_an_empty_or_garbled_message_is_ignored_without_a_traceback(
    tmp_path: Path, migrated_sqlite_url: str
) -> None:
    # flufl.bounce's detectors raise on a message with no From; its logger printed a traceback.
    config = write_config(tmp_path, migrated_sqlite_url)
    script = Path(sys.executable).parent / "digest"
    for body in (b"", b"garbage without headers\n"):
        done = subprocess.run(
            [str(script), "--config", str(config), "bounces", "-", "--format", "json"],
            input=body,
            capture_output=True,
            check=False,
            env={**os.environ, "DIGEST_CONFIG": ""},
        )
        assert done.returncode == 0, done.stderr
        assert b"Traceback" not in done.stderr and done.stderr == b"", done.stderr
