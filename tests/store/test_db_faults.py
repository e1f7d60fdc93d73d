"""A database URL never shows its password; a bad port or a vanished database is one line."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session
from click.testing import CliRunner
from sqlalchemy.engine import make_url

from digest.cli import cli
from digest.delivery.connection import CLAIM_BATCH
from digest.demo import free_port
from digest.errors import DatabaseError
from digest.store import masked_url, open_store
from digest.store.subscribers import add_subscriber, list_subscribers
from tests.conftest import RecordingHandler, SmtpServer
from tests.helpers.processes import digest_script
from tests.helpers.site_fixtures import AS_OF, add_subscribers, make_site


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        # A missing colon after the scheme.
        ("postgresql//digest:TopSecretPw@host/db", "postgresql//digest:***@host/db"),
        ("postgresql:/digest:TopSecretPw@host/db", "postgresql:***@host/db"),
        ("digest:TopSecretPw@host/db", "digest:***@host/db"),
        # A password holding `@`, `/`, `?` or `:` (written raw, not percent-encoded).
        ("postgresql://digest:Top@Secret@host:5432/db", "postgresql://digest:***@host:5432/db"),
        ("postgresql://digest:Top/Se?cr:et@host/db", "postgresql://digest:***@host/db"),
        # A password whose `@host` was forgotten reads as a port.
        ("postgresql://digest:TopSecretPw/db", "postgresql://digest:***/db"),
        # libpq's keyword form in the query string.
        (
            "postgresql://host/db?user=d&password=TopSecretPw&sslmode=require",
            "postgresql://host/db?user=d&password=***&sslmode=require",
        ),
        # Control characters are escaped, never echoed.
        ("postgresql://digest:Top\r\nSecret@host/db", "postgresql://digest:***@host/db"),
        ("sqlite:////srv/x\r\nerror: y.db", "sqlite:////srv/x\\r\\nerror: y.db"),
        ("postgresql://[::1]:5432/db", "postgresql://[::1]:5432/db"),
        ("postgresql://u@host:99999/db", "postgresql://u@host:99999/db"),
    ],
)
def test_masked_url_hides_the_password_whatever_the_shape(url: str, shown: str) -> None:
    assert masked_url(url) == shown


def _config(tmp_path: Path, url: str) -> list[str]:
    site = make_site(tmp_path / "site", url, 25)
    return ["--config", str(site.config_path)]


@pytest.mark.parametrize(
    "url",
    [
        "postgresql//digest:TopSecretPw@127.0.0.1/db",
        "postgresql:/digest:TopSecretPw@127.0.0.1/db",
        "postgresql://digest:TopSecretPw@127.0.0.1:5432:5433/db",
        "postgresql://digest:TopSecretPw@127.0.0.1:port/db",
    ],
)
def test_a_malformed_database_url_is_never_echoed_raw(tmp_path: Path, url: str) -> None:
    result = CliRunner().invoke(cli, [*_config(tmp_path, url), "subscribers", "list"])
    assert result.exit_code == 2, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert "TopSecret" not in result.output
    assert result.output.startswith("error: database.url ")


def test_a_password_holding_at_does_not_leak_its_tail(tmp_path: Path) -> None:
    url = "postgresql://digest:Top@Secret@127.0.0.1:9/db"
    result = CliRunner().invoke(cli, [*_config(tmp_path, url), "subscribers", "list"])
    assert result.exit_code == 2, result.output
    assert "Top" not in result.output and "Secret" not in result.output
    assert result.output == (
        "error: database.url postgresql://digest:***@127.0.0.1:9/db: the password holds a raw @; "
        "write it percent-encoded (%40)\n"
    )


def test_a_driver_message_never_quotes_the_password(tmp_path: Path) -> None:
    url = "postgresql://digest:Top%40Secret@127.0.0.1:9/db"  # nothing listens on port 9
    result = CliRunner().invoke(cli, [*_config(tmp_path, url), "subscribers", "list"])
    assert result.exit_code == 1, result.output
    assert "Top" not in result.output and "Secret" not in result.output
    assert result.output.startswith(
        "error: database postgresql+psycopg://digest:***@127.0.0.1:9/db"
    )


@pytest.mark.parametrize(
    ("port", "reason"),
    [
        ("99999", "port 99999 is out of range (1-65535)"),
        ("0", "port 0 is out of range (1-65535)"),
        ("54x32", "the port is not a number"),
    ],
)
def test_a_bad_port_in_database_url_is_one_line_exit_2(
    tmp_path: Path, port: str, reason: str
) -> None:
    url = f"postgresql://digest:TopSecretPw@127.0.0.1:{port}/digest"
    result = CliRunner().invoke(cli, [*_config(tmp_path, url), "subscribers", "list"])
    assert result.exit_code == 2, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert "Traceback" not in result.output
    first, *rest = result.output.splitlines()
    assert first.startswith(f"error: database.url postgresql://digest:***@127.0.0.1:{port}/")
    assert f": {reason}; use sqlite:///path.db" in first
    assert rest == []
    assert "TopSecretPw" not in result.output


def _drop_tables(url: str) -> None:
    """What deleting the file (SQLite) or dropping the schema (PostgreSQL) leaves behind."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        assert parsed.database is not None
        for suffix in ("", "-wal", "-shm"):
            Path(parsed.database + suffix).unlink(missing_ok=True)
        return
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        for table in reversed(sa.inspect(conn).get_sorted_table_and_fkc_names()):
            if table[0]:
                conn.execute(sa.text(f'DROP TABLE "{table[0]}" CASCADE'))
    engine.dispose()


def test_a_database_that_vanishes_while_open_is_one_clear_line(migrated_database_url: str) -> None:
    store = open_store(migrated_database_url)
    try:
        add_subscriber(store, "ana@example.com")
        _drop_tables(migrated_database_url)
        store.engine.dispose()  # the next query opens a new connection, as a new thread would
        with pytest.raises(DatabaseError) as info:
            list_subscribers(store)
    finally:
        store.dispose()
    assert info.value.message == (
        f"database {masked_url(store.url)}: table subscribers is gone; was the database "
        "deleted, replaced or emptied while digest was running?"
    )
    assert info.value.hint == "restore it from a backup; `digest db upgrade` makes empty tables"
    assert info.value.exit_code == 1


class DeletingHandler(RecordingHandler):
    """Deletes the SQLite database file (and its WAL) when the third message arrives."""

    database: Path = Path()

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        if len(self.messages) == 2:
            for suffix in ("", "-wal", "-shm"):
                Path(f"{self.database}{suffix}").unlink(missing_ok=True)
        return await super().handle_DATA(server, session, envelope)


@pytest.fixture
def deleting_server(tmp_path: Path) -> Iterator[SmtpServer]:
    handler = DeletingHandler()
    handler.database = tmp_path / "site" / "digest.db"
    port = free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port, decode_data=False)
    controller.start()
    try:
        yield SmtpServer("127.0.0.1", port, handler, controller)
    finally:
        controller.stop()


def test_deleting_the_database_file_mid_send_is_one_clear_line(
    tmp_path: Path, deleting_server: SmtpServer
) -> None:
    url = f"sqlite:///{tmp_path / 'site' / 'digest.db'}"
    site = make_site(tmp_path / "site", url, deleting_server.port, max_connections=2)
    site.add_post("Hello")
    store = site.store()
    # More than the two connections claim at once: a claim after the deletion opens the file anew.
    count = 3 * CLAIM_BATCH
    add_subscribers(store, [(f"p{i}@example.com", []) for i in range(count)])
    store.dispose()
    env = {k: v for k, v in os.environ.items() if not k.startswith("DIGEST_")}
    args = ["--config", str(site.config_path), "send", "weekly", "--as-of", AS_OF.isoformat()]
    result = subprocess.run(
        [digest_script(), *args], env=env, capture_output=True, text=True, timeout=120, check=False
    )
    assert result.returncode == 1, result.stderr
    assert result.stderr.splitlines() == [
        f"error: database {url}: table deliveries is gone; was the database deleted, replaced "
        "or emptied while digest was running?",
        "hint: restore it from a backup; `digest db upgrade` makes empty tables",
    ], result.stderr
