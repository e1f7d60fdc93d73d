"""The bounce samples through every source: Maildir, mbox, stdin and a real IMAP server (Dovecot).

Each marks the right subscriber and nobody else; reading the same source again changes nothing.
"""

from __future__ import annotations

import io
import mailbox
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
import sqlalchemy as sa

from digest.bounces.imap import ImapAccount
from digest.bounces.policy import Tally
from digest.bounces.reading import read_bounces_from, read_bounces_imap
from digest.errors import BadInputError, MailboxError
from digest.store import Store
from tests.helpers.bounce_fixtures import (
    EXPECTED_COUNTS,
    EXPECTED_STATUS,
    NOW,
    POLICY,
    add_subscribers,
    sample,
    sample_names,
    statuses,
)
from tests.helpers.imap_fixtures import PASSWORD, USER, Dovecot, running_dovecot


@pytest.fixture
def store(sqlite_store: Store) -> Store:
    add_subscribers(sqlite_store)
    return sqlite_store


@pytest.fixture(scope="module")
def dovecot() -> Iterator[Dovecot]:
    with running_dovecot() as server:
        yield server


def _event_count(store: Store) -> int:
    with store.session() as session:
        return int(session.scalar(sa.text("SELECT count(*) FROM bounce_events")) or 0)


def _maildir(folder: Path) -> str:
    box = mailbox.Maildir(folder / "bounces", create=True)
    for name in sample_names():
        box.add(sample(name))
    return str(folder / "bounces")


def _mbox(folder: Path) -> str:
    box = mailbox.mbox(folder / "bounces.mbox", create=True)
    for name in sample_names():
        box.add(sample(name))
    box.flush()
    box.close()
    return str(folder / "bounces.mbox")


@pytest.mark.parametrize("make_source", [_maildir, _mbox], ids=["maildir", "mbox"])
def test_a_folder_of_samples_marks_the_right_subscribers_once(
    store: Store, tmp_path: Path, make_source: object
) -> None:
    source = make_source(tmp_path)  # type: ignore[operator]
    first = read_bounces_from(store, POLICY, source, stdin=io.BytesIO(), now=NOW)
    assert first.as_dict() == EXPECTED_COUNTS
    assert statuses(store) == EXPECTED_STATUS
    events = _event_count(store)
    assert events == 6

    again = read_bounces_from(store, POLICY, source, stdin=io.BytesIO(), now=NOW)
    assert again == Tally(read=8, duplicates=8)
    assert statuses(store) == EXPECTED_STATUS
    assert _event_count(store) == events


def test_each_sample_on_stdin_as_an_mta_pipe_gives_it(store: Store) -> None:
    total = Tally()
    for name in sample_names():
        # Exim and Postfix pipes may put the mbox `From ` envelope line first.
        piped = b"From MAILER-DAEMON Sat Nov 28 09:12:03 2026\n" + sample(name)
        total.add(read_bounces_from(store, POLICY, "-", stdin=io.BytesIO(piped), now=NOW))
    assert total.as_dict() == EXPECTED_COUNTS
    assert statuses(store) == EXPECTED_STATUS
    again = read_bounces_from(
        store, POLICY, "-", stdin=io.BytesIO(sample("postfix-dsn.eml")), now=NOW
    )
    assert again == Tally(read=1, duplicates=1)


def test_a_single_saved_message_file_is_read_as_one_message(store: Store, tmp_path: Path) -> None:
    path = tmp_path / "bounce.eml"
    path.write_bytes(sample("postfix-dsn.eml"))
    tally = read_bounces_from(store, POLICY, str(path), stdin=io.BytesIO(), now=NOW)
    assert tally == Tally(read=1, hard=1)
    assert statuses(store)["alice@example.net"] == "bounced"


def test_a_missing_or_unusable_source_is_one_clear_error(store: Store, tmp_path: Path) -> None:
    with pytest.raises(BadInputError, match=r"missing: no such Maildir folder or mbox file"):
        read_bounces_from(store, POLICY, str(tmp_path / "missing"), stdin=io.BytesIO(), now=NOW)
    (tmp_path / "plain").mkdir()
    with pytest.raises(BadInputError, match=r"plain: a folder but not a Maildir"):
        read_bounces_from(store, POLICY, str(tmp_path / "plain"), stdin=io.BytesIO(), now=NOW)


def _account(server: Dovecot, folder: str, **changes: object) -> ImapAccount:
    account = ImapAccount(
        host=server.host,
        port=server.port,
        username=USER,
        password=PASSWORD,
        folder=folder,
        ca_file=server.ca_file,
        timeout=10,
    )
    return replace(account, **changes)  # type: ignore[arg-type]


def _fill(server: Dovecot, folder: str) -> None:
    client = server.client()
    try:
        client.create(folder)
        for name in sample_names():
            status, _ = client.append(folder, None, None, sample(name).replace(b"\n", b"\r\n"))
            assert status == "OK"
    finally:
        client.logout()


def _uids(server: Dovecot, folder: str, criteria: str = "ALL") -> list[bytes]:
    client = server.client()
    try:
        client.select(folder)
        status, data = client.uid("SEARCH", criteria)
        assert status == "OK"
        return list(data[0].split())
    finally:
        client.logout()


def test_imap_over_verified_tls_flags_what_it_processed(store: Store, dovecot: Dovecot) -> None:
    _fill(dovecot, "Flagged")
    account = _account(dovecot, "Flagged")
    first = read_bounces_imap(store, POLICY, account, now=NOW)
    assert first.as_dict() == EXPECTED_COUNTS
    assert statuses(store) == EXPECTED_STATUS
    assert len(_uids(dovecot, "Flagged", "KEYWORD $DigestProcessed")) == 8
    # A rerun reads nothing: every message is flagged as done.
    assert read_bounces_imap(store, POLICY, account, now=NOW) == Tally()
    assert statuses(store) == EXPECTED_STATUS


def test_imap_moves_processed_messages_to_a_folder(store: Store, dovecot: Dovecot) -> None:
    _fill(dovecot, "Moving")
    account = _account(dovecot, "Moving", processed_folder="Moving.done")
    assert read_bounces_imap(store, POLICY, account, now=NOW).as_dict() == EXPECTED_COUNTS
    assert _uids(dovecot, "Moving") == []
    assert len(_uids(dovecot, "Moving.done")) == 8
    assert read_bounces_imap(store, POLICY, account, now=NOW) == Tally()
    assert statuses(store) == EXPECTED_STATUS


def test_imap_refuses_a_server_whose_certificate_it_cannot_verify(
    store: Store, dovecot: Dovecot
) -> None:
    account = _account(dovecot, "INBOX", ca_file=None)
    with pytest.raises(MailboxError, match="TLS certificate not trusted") as info:
        read_bounces_imap(store, POLICY, account, now=NOW)
    assert f"IMAP 127.0.0.1:{dovecot.port}" in str(info.value)
    assert set(statuses(store).values()) == {"active"}


def test_imap_wrong_password_names_the_user_not_the_password(
    store: Store, dovecot: Dovecot
) -> None:
    account = _account(dovecot, "INBOX", password="wrong-password-123")
    with pytest.raises(MailboxError) as info:
        read_bounces_imap(store, POLICY, account, now=NOW)
    assert str(info.value) == f"IMAP 127.0.0.1:{dovecot.port}: login refused for user {USER}"
    assert "wrong-password-123" not in str(info.value)
