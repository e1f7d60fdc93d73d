"""The last run's bounce and complaint rates, and the warnings `digest send` gives about them."""

from __future__ import annotations

from digest.bounces.mail import read_report
from digest.bounces.policy import apply_report
from digest.delivery.health import rate_warnings
from digest.store import Store
from digest.store.bounce_events import RunOutcome, last_run_outcome
from tests.helpers.bounce_fixtures import NOW, POLICY, add_subscribers, sample, sent_run


def test_rates_at_the_limits_give_no_warning() -> None:
    assert rate_warnings("weekly", None) == []
    assert rate_warnings("weekly", RunOutcome(1, 0, 0, 0, 0)) == []
    assert rate_warnings("weekly", RunOutcome(1, 990, 10, 40, 1)) == []  # 5.0%, 0.1%


def test_rates_over_the_limits_are_named() -> None:
    over = rate_warnings("weekly", RunOutcome(7, 990, 10, 41, 2))
    assert over == [
        "the last run of weekly (run 7) bounced 5.1% (51 of 1000), over 5%: relays such as "
        "Amazon SES review accounts above that; clean the list (digest bounces)",
        "the last run of weekly (run 7) drew complaints from 0.20% (2 of 1000), over 0.1%: "
        "Gmail and Amazon SES act on rates above that",
    ]


def test_the_last_finished_run_counts_what_came_back(store: Store) -> None:
    ids = add_subscribers(store, ["alice@example.net", "erin@example.com", "ivy@example.com"])
    sent_run(store, [ids["ivy@example.com"]])
    with store.session() as session:
        assert last_run_outcome(session, "nightly") is None
    run = sent_run(store, list(ids.values()))
    apply_report(store, POLICY, read_report(sample("postfix-dsn.eml")), now=NOW)
    apply_report(store, POLICY, read_report(sample("arf-complaint.eml")), now=NOW)
    with store.session() as session:
        outcome = last_run_outcome(session, "weekly")
    assert outcome == RunOutcome(run.run_id, sent=3, refused=0, bounced_later=1, complaints=1)
    assert len(rate_warnings("weekly", outcome)) == 2
