"""Forged reports, poison mail and a second reader: what an outside review broke, held now.

Forged: a report without a VERP code (VERP on) or naming many recipients changes nothing.
Poison: a message too deep or too large is counted ignored and the real bounce after it acts.
"""

from __future__ import annotations

import io
import mailbox
from collections.abc import Iterator
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from digest.bounces.imap import ImapAccount, open_mailbox
from digest.bounces.mail import read_report
from digest.bounces.policy import (
    MANY,
    NO_CODE,
    NOT_SENT,
    TOO_MANY,
    Tally,
    apply_report,
)
from digest.bounces.reading import read_bounces_from, read_bounces_imap
from digest.store import Store, open_store
from digest.store.models import D_SENT, Delivery, Run, Segment, Subscriber
from digest.store.subscribers import new_subscriber
from tests.helpers.bounce_fixtures import (
    NOW,
    POLICY,
    VERP_POLICY,
    add_subscribers,
    sample,
    statuses,
)
from tests.helpers.imap_fixtures import PASSWORD, USER, Dovecot, running_dovecot

CROWD = 5000


@pytest.fixture
def store(migrated_sqlite_url: str) -> Iterator[Store]:
    opened = open_store(migrated_sqlite_url)
    try:
        yield opened
    finally:
        opened.dispose()


def _crowd(store: Store, count: int) -> list[str]:
    """`count` active subscribers, each sent one message at NOW (bulk: a second, not minutes)."""
    addresses = [f"reader{n}@example.org" for n in range(count)]
    with store.session() as session:
        subscribers = [
            new_subscriber(a, name=None, categories=None, status="active", reason="t", now=NOW)
            for a in addresses
        ]
        session.add_all(subscribers)
        run = Run(digest="weekly", as_of=NOW, started_at=NOW, finished_at=NOW, status="finished")
        session.add(run)
        session.flush()
        segment = Segment(run_id=run.id, post_ids=[])
        session.add(segment)
        session.flush()
        session.add_all(
            Delivery(
                run_id=run.id,
                segment_id=segment.id,
                subscriber_id=sub.id,
                status=D_SENT,
                attempts=1,
                sent_at=NOW,
                updated_at=NOW,
            )
            for sub in subscribers
        )
    return addresses


def _dsn(recipients: list[str], *, key: str = "forged-dsn") -> bytes:
    """A DSN failing each recipient with 5.1.1, returned to `to`, quoting no message of ours."""
    blocks = "".join(
        f"Final-Recipient: rfc822; {address}\nAction: failed\nStatus: 5.1.1\n"
        f"Diagnostic-Code: smtp; 550 5.1.1 <{address}>: User unknown\n\n"
        for address in recipients
    )
    return (
        "From: MAILER-DAEMON@mx.example.net\nTo: bounces@example.com\n"
        f"Subject: Undelivered Mail\nMessage-ID: <{key}@mx.example.net>\nMIME-Version: 1.0\n"
        'Content-Type: multipart/report; report-type=delivery-status; boundary="B"\n\n'
        "--B\nContent-Type: text/plain\n\nThe mail could not be delivered.\n\n"
        "--B\nContent-Type: message/delivery-status\n\n"
        f"Reporting-MTA: dns; mx.example.net\n\n{blocks}--B--\n"
    ).encode()


def _arf(address: str) -> bytes:
    """An abuse report about `address`, with no VERP address in it anywhere."""
    return sample("arf-complaint.eml").replace(b"erin@example.com", address.encode())


def _subscriber_statuses(store: Store) -> set[str]:
    with store.session() as session:
        return set(session.scalars(sa.select(Subscriber.status).distinct()))


def test_a_forged_dsn_of_5000_recipients_and_an_arf_without_a_verp_code_change_nothing(
    store: Store,
) -> None:
    crowd = _crowd(store, CROWD)
    forged = _dsn(crowd)
    assert len(forged) > 350_000  # the size of the review's report
    tally = apply_report(store, VERP_POLICY, read_report(forged), now=NOW)
    assert tally == Tally(unmatched=1) and tally.reasons == {NO_CODE: 1}
    complaint = apply_report(store, VERP_POLICY, read_report(_arf(crowd[7])), now=NOW)
    assert complaint == Tally(unmatched=1) and complaint.reasons == {NO_CODE: 1}
    assert _subscriber_statuses(store) == {"active"}
    with store.session() as session:
        assert session.scalar(sa.text("SELECT count(*) FROM bounce_events")) == 0


def test_without_verp_a_report_acts_on_one_recent_delivery_at_most(store: Store) -> None:
    crowd = _crowd(store, 60)
    many = apply_report(store, POLICY, read_report(_dsn(crowd)), now=NOW)
    assert many == Tally(unmatched=1) and many.reasons == {TOO_MANY: 1}
    two = apply_report(store, POLICY, read_report(_dsn(crowd[:2], key="two")), now=NOW)
    assert two == Tally(unmatched=1) and two.reasons == {MANY: 1}
    assert _subscriber_statuses(store) == {"active"}
    # A month and more after the last message to them, a report acts on no one.
    late = NOW + POLICY.match_window + timedelta(days=1)
    stale = apply_report(store, POLICY, read_report(_dsn(crowd[:1], key="late")), now=late)
    assert stale == Tally(unmatched=1) and stale.reasons == {NOT_SENT: 1}
    # A stranger's address we never wrote to: nothing.
    add_subscribers(store, ["never@example.org"], mailed=False)
    never = read_report(_dsn(["never@example.org"], key="never"))
    unsent = apply_report(store, POLICY, never, now=NOW)
    assert unsent.reasons == {NOT_SENT: 1}
    assert _subscriber_statuses(store) == {"active"}
    # The one recipient of a recent message: bounced.
    one = read_report(_dsn(crowd[:1], key="one"))
    assert apply_report(store, POLICY, one, now=NOW) == Tally(hard=1)
    assert statuses(store)[crowd[0]] == "bounced"


def _nested(depth: int) -> bytes:
    """A 64 KB message of `depth` nested multipart parts (the review's RecursionError)."""
    head = b"From: x@example.net\nTo: bounces@example.com\nMessage-ID: <poison@example.net>\n"
    parts = [head]
    for level in range(depth):
        parts.append(f'Content-Type: multipart/mixed; boundary="b{level}"\n\n--b{level}\n'.encode())
    parts.append(b"Content-Type: text/plain\n\n" + b"x" * 40_000 + b"\n")
    for level in reversed(range(depth)):
        parts.append(f"--b{level}--\n".encode())
    return b"".join(parts)


def _poison_then_bounce(folder: Path, poison: bytes) -> str:
    box = mailbox.Maildir(folder / "bounces", create=True)
    # Maildir keys sort by time first: the poison is read first.
    box.add(poison)
    box.add(sample("postfix-dsn.eml"))
    return str(folder / "bounces")


@pytest.mark.parametrize("kind", ["1000-deep", "100-deep", "wide", "large"])
def test_a_poison_mail_first_in_a_maildir_is_ignored_and_the_bounce_after_it_acts(
    store: Store, tmp_path: Path, kind: str
) -> None:
    add_subscribers(store, ["alice@example.net", "ivy@example.com"])
    poison = {
        "1000-deep": _nested(1000),
        "100-deep": _nested(100),
        "wide": b"Content-Type: multipart/mixed; boundary=b\n\n" + b"--b\n\nx\n" * 200_000,
        "large": b"Subject: big\n\n" + b"x" * 3_000_000,
    }[kind]
    source = _poison_then_bounce(tmp_path, poison)
    keys = sorted(mailbox.Maildir(source, create=False).iterkeys())
    assert mailbox.Maildir(source, create=False).get_bytes(keys[0]) == poison
    tally = read_bounces_from(
        store, POLICY, source, stdin=io.BytesIO(), now=NOW, max_bytes=2 * 1024 * 1024
    )
    assert (tally.read, tally.ignored, tally.hard) == (2, 1, 1)
    assert statuses(store) == {"alice@example.net": "bounced", "ivy@example.com": "active"}
    (reason,) = tally.reasons
    expected = {
        "1000-deep": "unreadable: more than 500 MIME parts",
        "100-deep": "unreadable: MIME parts nested deeper than 20",
        "wide": "unreadable: more than 500 MIME parts",
        "large": "larger than bounces.max_message_bytes (2097152 bytes)",
    }
    assert reason == expected[kind]


def test_an_oversized_message_on_stdin_is_read_to_its_end_and_ignored(store: Store) -> None:
    stdin = io.BytesIO(b"Subject: big\n\n" + b"x" * 300_000)
    tally = read_bounces_from(store, POLICY, "-", stdin=stdin, now=NOW, max_bytes=256 * 1024)
    assert (tally.read, tally.ignored) == (1, 1)
    assert stdin.read() == b""  # the MTA's pipe is drained, not broken


@pytest.fixture(scope="module")
def dovecot() -> Iterator[Dovecot]:
    with running_dovecot() as server:
        yield server


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


def _append(server: Dovecot, folder: str, messages: list[bytes]) -> None:
    client = server.client()
    try:
        client.create(folder)
        for raw in messages:
            status, _ = client.append(folder, None, None, raw.replace(b"\n", b"\r\n"))
            assert status == "OK"
    finally:
        client.logout()


def _count(server: Dovecot, folder: str, criteria: str = "ALL") -> int:
    client = server.client()
    try:
        client.select(folder)
        status, data = client.uid("SEARCH", criteria)
        assert status == "OK"
        return len(data[0].split())
    finally:
        client.logout()


def test_a_poison_mail_first_in_an_imap_folder_is_marked_done_and_the_bounce_acts(
    store: Store, dovecot: Dovecot
) -> None:
    add_subscribers(store, ["alice@example.net", "ivy@example.com"])
    big = b"Subject: big\n\n" + b"y" * 300_000
    _append(dovecot, "Poison", [_nested(1000), big, sample("postfix-dsn.eml")])
    account = _account(dovecot, "Poison")
    tally = read_bounces_imap(store, POLICY, account, now=NOW, max_bytes=256 * 1024)
    assert (tally.read, tally.ignored, tally.hard) == (3, 2, 1)
    assert statuses(store) == {"alice@example.net": "bounced", "ivy@example.com": "active"}
    assert _count(dovecot, "Poison", "KEYWORD $DigestProcessed") == 3
    # The next run has nothing left to read: the poison was marked done like the rest.
    assert read_bounces_imap(store, POLICY, account, now=NOW) == Tally()


def test_a_second_reader_skips_what_the_first_took(store: Store, dovecot: Dovecot) -> None:
    add_subscribers(store, ["alice@example.net", "frank@example.net"])
    _append(dovecot, "Shared", [sample("postfix-dsn.eml"), sample("postfix-soft.eml")])
    account = _account(dovecot, "Shared", processed_folder="Shared.done")
    with open_mailbox(account) as late:
        waiting = late.unprocessed(4 * 1024 * 1024)
        first = next(waiting)  # the late reader has its list and its first message...
        # ...when another reader takes both and moves them away.
        assert read_bounces_imap(store, POLICY, account, now=NOW).as_dict()["read"] == 2
        assert late.mark_done(first.uid) is False
        assert list(waiting) == []
    assert _count(dovecot, "Shared.done") == 2
    assert statuses(store)["alice@example.net"] == "bounced"
