"""Confirmation links: each confirms the choices of its own request, and a status change voids
it by a counter, whatever any host's clock says."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import sqlalchemy as sa

from digest.store import Store, open_store
from digest.store.confirmations import LinkState, confirm_link
from digest.store.models import Confirmation, utcnow
from digest.store.signups import SignupLimits, process_signups, queue_signup
from digest.store.subscribers import find_subscriber, unsubscribe
from tests.conftest import SmtpServer
from tests.helpers.site_fixtures import make_site
from tests.helpers.web_client import Client, path_of

DIGESTS = {"weekly": {"lookback_days": 7}, "daily": {"lookback_days": 1}}
SPAM = "Buy pills at evil.example"


def _links(smtp_server: SmtpServer, address: str) -> list[str]:
    links = []
    for received in smtp_server.handler.to(address):
        text = received.message.get_body(("plain",))
        assert text is not None
        (link,) = [w for w in str(text.get_content()).split() if "/confirm/" in w]
        links.append(path_of(link))
    return links


def test_an_earlier_sign_up_never_decides_the_victims_choices(
    tmp_path: Path, migrated_sqlite_url: str, smtp_server: SmtpServer
) -> None:
    site = make_site(
        tmp_path / "site",
        migrated_sqlite_url,
        smtp_server.port,
        digests=DIGESTS,
        extra={"web": {"signup_resend_after": "0s"}},
    )
    site.add_post("Rusty", categories=["rust"])
    store = site.store()
    client = Client.of(site.settings(), store)
    attacker = {"email": "zoe@example.com", "name": SPAM, "categories": "spam", "digests": "daily"}
    assert client.post_form("/subscribe", attacker).status == 202
    client.send_queued()
    victim = {"email": "zoe@example.com", "name": "Zoë", "categories": "rust"}
    assert client.post_form("/subscribe", victim).status == 202  # her own request gets a link
    client.send_queued()
    attackers_link, her_link = _links(smtp_server, "zoe@example.com")

    page = client.get(her_link)
    assert page.status == 200
    assert "Name: Zoë" in page.body and "Categories: rust" in page.body
    assert "Digests: Weekly digest, Daily digest" in page.body and SPAM not in page.body
    shown = client.get(attackers_link).body  # what the attacker's link would save is shown
    assert SPAM in shown and "Digests: Daily digest" in shown

    assert client.call("POST", her_link).status == 200
    row = find_subscriber(store, "zoe@example.com")
    assert row is not None
    assert (row.status, row.name, row.categories, row.all_digests) == (
        "active",
        "Zoë",
        ("rust",),
        True,
    )
    assert client.call("POST", attackers_link).status == 200  # "Already subscribed"
    row = find_subscriber(store, "zoe@example.com")
    assert row is not None and row.name == "Zoë"


def test_a_web_host_with_a_fast_clock_cannot_undo_an_unsubscribe(migrated_sqlite_url: str) -> None:
    store = open_store(migrated_sqlite_url)
    try:
        _fast_clock(store)
    finally:
        store.dispose()


def _fast_clock(sqlite_store: Store) -> None:
    now = utcnow()
    fast = now + timedelta(minutes=30)  # the web host's clock, half an hour ahead
    queue_signup(sqlite_store, "zoe@example.com", client_key="k", now=fast)
    process_signups(sqlite_store, SignupLimits(timedelta(minutes=10), 20))
    with sqlite_store.session() as session:
        subscriber_id, nonce = session.execute(
            sa.select(Confirmation.subscriber_id, Confirmation.nonce)
        ).one()
    unsubscribe(sqlite_store, "zoe@example.com", now=now)  # later, on a host with the right time
    check = confirm_link(
        sqlite_store,
        subscriber_id,
        nonce,
        max_age=timedelta(days=7),
        now=fast + timedelta(minutes=1),
    )
    assert check.state is LinkState.VOID
    row = find_subscriber(sqlite_store, "zoe@example.com")
    assert row is not None and row.status == "unsubscribed"
