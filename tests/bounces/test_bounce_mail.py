"""Reading bounce mail: RFC 3464 DSNs, RFC 5965 ARF reports, other formats via flufl.bounce."""

from __future__ import annotations

import pytest

from digest.bounces.mail import read_report
from tests.helpers.bounce_fixtures import sample

CASES = [
    # sample, kind, address, status code
    ("postfix-dsn.eml", "hard", "alice@example.net", "5.1.1"),
    ("postfix-soft.eml", "soft", "frank@example.net", "4.2.2"),
    ("postfix-delayed.eml", "ignored", "grace@example.net", "4.4.1"),
    ("exim-bounce.eml", "hard", "bob@example.org", "5.1.1"),
    ("exchange-ndr.eml", "hard", "carol@corp.example.com", None),
    ("gmail-bounce.eml", "hard", "dan@example.org", "5.1.1"),
    ("arf-complaint.eml", "complaint", "erin@example.com", None),
]


@pytest.mark.parametrize(("name", "kind", "address", "status"), CASES)
def test_each_sample_names_its_recipient(
    name: str, kind: str, address: str, status: str | None
) -> None:
    report = read_report(sample(name))
    assert [(f.kind, f.addresses[0], f.status_code) for f in report.failures] == [
        (kind, address, status)
    ]
    assert report.origin == "mail"
    assert report.key.startswith("mail:<") and report.key.endswith(">")


def test_dsn_keeps_the_diagnostic_and_the_original_message_id() -> None:
    report = read_report(sample("postfix-dsn.eml"))
    assert report.original_message_id == "<176432112000.4242.1@example.com>"
    assert report.failures[0].reason == (
        "smtp; 550 5.1.1 <alice@example.net>: Recipient address rejected: "
        "User unknown in virtual mailbox table"
    )
    assert "bounces@example.com" in report.return_paths


def test_arf_gives_the_original_envelope_sender_and_message_id() -> None:
    report = read_report(sample("arf-complaint.eml"))
    assert report.original_message_id == "<176432112000.4242.5@example.com>"
    assert report.return_paths == ("bounces@example.com",)
    assert report.failures[0].reason == "abuse report (SomeGenerator/1.0)"


def test_an_auto_reply_is_no_bounce() -> None:
    assert read_report(sample("auto-reply.eml")).failures == ()


def test_a_not_spam_feedback_report_is_no_complaint() -> None:
    raw = sample("arf-complaint.eml").replace(b"Feedback-Type: abuse", b"Feedback-Type: not-spam")
    assert [f.kind for f in read_report(raw).failures] == ["ignored"]


def test_a_redacted_arf_still_finds_the_recipient_in_the_original() -> None:
    raw = sample("arf-complaint.eml").replace(b"Original-Rcpt-To: <erin@example.com>\n", b"")
    report = read_report(raw)
    assert [f.addresses for f in report.failures] == [("erin@example.com",)]


def test_a_report_without_message_id_is_keyed_by_its_content() -> None:
    raw = sample("exim-bounce.eml").replace(
        b"Message-Id: <E1t8XyZ-000abc-2Q@relay.example.org>\n", b""
    )
    first, again = read_report(raw), read_report(raw)
    assert first.key.startswith("mail-sha256:") and first.key == again.key
    assert read_report(raw + b"\n").key != first.key


def test_a_multi_recipient_dsn_gives_one_failure_each() -> None:
    raw = sample("postfix-dsn.eml").replace(
        b"Diagnostic-Code: smtp; 550 5.1.1 <alice@example.net>: Recipient address\n"
        b"    rejected: User unknown in virtual mailbox table\n",
        b"Diagnostic-Code: smtp; 550 5.1.1 user unknown\n\n"
        b"Final-Recipient: rfc822; ivy@example.com\nAction: delivered\nStatus: 2.0.0\n\n"
        b"Final-Recipient: rfc822; henry@example.net\nAction: failed\nStatus: 4.7.1\n",
    )
    failures = read_report(raw).failures
    assert [(f.kind, f.addresses) for f in failures] == [
        ("hard", ("alice@example.net",)),
        ("ignored", ("ivy@example.com",)),
        ("soft", ("henry@example.net",)),
    ]
