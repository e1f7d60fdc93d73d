"""The bounce policy on a real database: which delivery a report names and what it does."""

from __future__ import annotations

from datetime import timedelta

import sqlalchemy as sa

from digest.bounces.mail import read_report
from digest.bounces.policy import BouncePolicy, Tally, apply_report
from digest.bounces.report import Failure, Report
from digest.mail.verp import verp_address, verp_code
from digest.store import Store
from digest.store.bounce_events import run_bounces
from digest.store.subscribers import find_subscriber
from tests.helpers.bounce_fixtures import (
    BOUNCE_ADDRESS,
    NOW,
    POLICY,
    SECRET,
    VERP_POLICY,
    add_subscribers,
    sample,
    sent_run,
    statuses,
)


def _events(store: Store) -> list[tuple[str, int | None, int | None]]:
    with store.session() as session:
        rows = session.execute(
            sa.text("SELECT kind, subscriber_id, run_id FROM bounce_events ORDER BY id")
        )
        return [(r.kind, r.subscriber_id, r.run_id) for r in rows]


def _report(kind: str, address: str, key: str, *, to: str = BOUNCE_ADDRESS) -> Report:
    status = {"hard": "5.1.1", "soft": "4.2.2"}.get(kind)
    failure = Failure(kind, (address,), status, f"{status} test")  # type: ignore[arg-type]
    return Report(key=key, origin="mail", failures=(failure,), return_paths=(to,))


def _verp_dsn(run_id: int, subscriber_id: int, *, secret: str = SECRET) -> bytes:
    """The Postfix sample, returned to a VERP address and quoting no useful recipient."""
    address = verp_address(BOUNCE_ADDRESS, verp_code(secret, run_id, subscriber_id))
    return (
        sample("postfix-dsn.eml")
        .replace(b"To: bounces@example.com", b"To: " + address.encode())
        .replace(b"Delivered-To: bounces@example.com", b"Delivered-To: " + address.encode())
        .replace(b"X-Original-To: bounces@example.com\n", b"")
        .replace(b"alice@example.net", b"someone@forwarded.example")
        .replace(b"20261128091203.3F8E21C0A2", f"verp-{run_id}-{subscriber_id}".encode())
    )


def test_a_verp_dsn_bounces_exactly_that_delivery(store: Store) -> None:
    ids = add_subscribers(store, ["alice@example.net", "bob@example.org"])
    run = sent_run(store, list(ids.values()))
    raw = _verp_dsn(run.run_id, ids["bob@example.org"])
    assert b"bob@example.org" not in raw
    assert apply_report(store, VERP_POLICY, read_report(raw), now=NOW) == Tally(hard=1)
    assert statuses(store) == {"alice@example.net": "active", "bob@example.org": "bounced"}
    assert _events(store) == [("hard", ids["bob@example.org"], run.run_id)]
    bob = find_subscriber(store, "bob@example.org")
    assert bob is not None and bob.status_reason == (
        "hard bounce (mail) 5.1.1: smtp; 550 5.1.1 <someone@forwarded.example>: "
        "Recipient address rejected: User unknown in virtual mailbox table"
    )


def test_a_tampered_verp_code_changes_nothing(store: Store) -> None:
    ids = add_subscribers(store, ["alice@example.net", "bob@example.org"])
    run = sent_run(store, list(ids.values()))
    forged = _verp_dsn(run.run_id, ids["bob@example.org"], secret="not-our-secret-0123456789")
    tally = apply_report(store, VERP_POLICY, read_report(forged), now=NOW)
    assert tally == Tally(ignored=1)
    assert set(statuses(store).values()) == {"active"}
    assert _events(store) == []


def test_a_verp_code_for_a_run_the_subscriber_was_not_in_changes_nothing(store: Store) -> None:
    ids = add_subscribers(store, ["alice@example.net", "bob@example.org"])
    run = sent_run(store, [ids["alice@example.net"]])
    tally = apply_report(
        store, VERP_POLICY, read_report(_verp_dsn(run.run_id, ids["bob@example.org"])), now=NOW
    )
    assert tally == Tally(ignored=1)
    assert set(statuses(store).values()) == {"active"}


def test_the_quoted_message_id_finds_the_delivery(store: Store) -> None:
    ids = add_subscribers(store, ["alice@example.net", "ivy@example.com"])
    alice = ids["alice@example.net"]
    run = sent_run(store, list(ids.values()), {alice: "<176432112000.4242.1@example.com>"})
    raw = sample("postfix-dsn.eml").replace(b"alice@example.net", b"old-alias@example.net")
    assert apply_report(store, POLICY, read_report(raw), now=NOW) == Tally(hard=1)
    assert statuses(store)["alice@example.net"] == "bounced"
    assert _events(store) == [("hard", alice, run.run_id)]


def test_an_unknown_recipient_is_counted_unmatched(store: Store) -> None:
    add_subscribers(store, ["ivy@example.com"])
    tally = apply_report(store, POLICY, read_report(sample("postfix-dsn.eml")), now=NOW)
    assert tally == Tally(unmatched=1)
    assert statuses(store) == {"ivy@example.com": "active"}


def test_soft_bounces_bounce_at_the_limit_within_the_window(store: Store) -> None:
    ids = add_subscribers(store, ["frank@example.net", "ivy@example.com"])
    policy = BouncePolicy(SECRET, soft_limit=3, soft_window=timedelta(days=30))
    old = NOW - timedelta(days=40)
    apply_report(store, policy, _report("soft", "frank@example.net", "k0"), now=old)
    for number in (1, 2):
        tally = apply_report(
            store, policy, _report("soft", "frank@example.net", f"k{number}"), now=NOW
        )
        assert tally == Tally(soft=1)
        assert statuses(store)["frank@example.net"] == "active"  # the old one is out of window
    apply_report(store, policy, _report("soft", "frank@example.net", "k3"), now=NOW)
    assert statuses(store) == {"frank@example.net": "bounced", "ivy@example.com": "active"}
    with store.session() as session:
        reason = session.scalar(
            sa.text("SELECT status_reason FROM subscribers WHERE id = :id"),
            {"id": ids["frank@example.net"]},
        )
    assert reason == "3 soft bounces within 30 days, last 4.2.2: 4.2.2 test"


def test_a_complaint_unsubscribes_even_a_bounced_subscriber(store: Store) -> None:
    add_subscribers(store, ["erin@example.com"])
    apply_report(store, POLICY, _report("hard", "erin@example.com", "h"), now=NOW)
    assert statuses(store) == {"erin@example.com": "bounced"}
    tally = apply_report(store, POLICY, read_report(sample("arf-complaint.eml")), now=NOW)
    assert tally == Tally(complaints=1)
    assert statuses(store) == {"erin@example.com": "unsubscribed"}


def test_a_bounce_never_resubscribes_or_overrides_an_unsubscribe(store: Store) -> None:
    add_subscribers(store, ["alice@example.net"])
    apply_report(store, POLICY, read_report(sample("arf-complaint.eml")), now=NOW)
    apply_report(store, POLICY, _report("complaint", "alice@example.net", "c"), now=NOW)
    apply_report(store, POLICY, _report("hard", "alice@example.net", "h"), now=NOW)
    assert statuses(store) == {"alice@example.net": "unsubscribed"}


def test_the_same_report_twice_changes_nothing_the_second_time(store: Store) -> None:
    ids = add_subscribers(store, ["frank@example.net"], mailed=False)
    run = sent_run(store, list(ids.values()))
    policy = BouncePolicy(SECRET, soft_limit=2)
    report = read_report(sample("postfix-soft.eml"))
    assert apply_report(store, policy, report, now=NOW) == Tally(soft=1)
    assert apply_report(store, policy, report, now=NOW) == Tally(duplicates=1)
    assert statuses(store) == {"frank@example.net": "active"}
    assert _events(store) == [("soft", ids["frank@example.net"], run.run_id)]


def test_history_counts_hard_bounces_and_complaints_per_run(store: Store) -> None:
    ids = add_subscribers(store, ["alice@example.net", "erin@example.com", "ivy@example.com"])
    run = sent_run(store, list(ids.values()))
    other = sent_run(store, [ids["ivy@example.com"]])
    apply_report(store, POLICY, read_report(sample("postfix-dsn.eml")), now=NOW)
    apply_report(store, POLICY, read_report(sample("arf-complaint.eml")), now=NOW)
    with store.session() as session:
        counts = run_bounces(session, [run.run_id, other.run_id])
    assert {k: (v.bounced_later, v.complaints) for k, v in counts.items()} == {run.run_id: (1, 1)}
