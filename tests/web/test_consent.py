"""Consent you can prove: a web sign-up and its confirmation leave a record (when asked, when
confirmed, how, a keyed hash of the client's IP address), and the person sees it on their
preferences page."""

from __future__ import annotations

from digest.i18n import format_date
from digest.settings import Settings
from digest.store import Store
from digest.store.subscribers import add_subscriber, find_subscriber
from digest.tokens import preferences_url
from tests.conftest import SmtpServer
from tests.helpers import web_client
from tests.helpers.web_client import Client, confirmation_link, path_of

client, settings, site, store = (
    web_client.client,
    web_client.settings,
    web_client.site,
    web_client.store,
)


def test_a_web_sign_up_and_its_confirmation_leave_a_consent_record(
    client: Client, settings: Settings, store: Store, smtp_server: SmtpServer
) -> None:
    assert client.post_form("/subscribe", {"email": "ada@example.com"}).status == 202
    client.send_queued()
    pending = find_subscriber(store, "ada@example.com")
    assert pending is not None and pending.status == "pending"
    asked = pending.consent
    assert asked.source == "web" and asked.requested_at is not None
    assert asked.confirmed_at is None
    # A keyed hash of the client's address (web.secret), never the address itself.
    assert asked.ip is not None and len(asked.ip) == 32 and "127.0.0.1" not in asked.ip

    link = confirmation_link(smtp_server, "ada@example.com")
    assert client.call("POST", path_of(link)).status == 200
    row = find_subscriber(store, "ada@example.com")
    assert row is not None and row.status == "active"
    record = row.consent
    assert (record.source, record.ip, record.requested_at) == ("web", asked.ip, asked.requested_at)
    assert record.confirmed_at is not None and record.confirmed_at >= record.requested_at
    assert row.as_dict()["consent"] == {
        "requested_at": record.requested_at.isoformat(),
        "confirmed_at": record.confirmed_at.isoformat(),
        "source": "web",
        "ip": asked.ip,
    }

    page = client.get(path_of(preferences_url(settings, row.id, row.link_key)))
    assert page.status == 200
    site_ = settings.site
    asked_on = format_date(record.requested_at, site_.lang, site_.tz)
    confirmed_on = format_date(record.confirmed_at, site_.lang, site_.tz)
    assert f"You asked for it on {asked_on} on the sign-up page" in page.body
    assert f"and confirmed it on {confirmed_on} with the link we sent you." in page.body
    as_json = client.get(
        path_of(preferences_url(settings, row.id, row.link_key)), accept="application/json"
    )
    assert as_json.json["preferences"]["consent"]["source"] == "web"  # type: ignore[index]


def test_an_address_added_by_the_operator_says_so(
    client: Client, settings: Settings, store: Store
) -> None:
    row, _ = add_subscriber(store, "op@example.com")
    assert (row.consent.source, row.consent.confirmed_at) == ("cli", None)
    page = client.get(path_of(preferences_url(settings, row.id, row.link_key)))
    assert "The owner of the list added this address on" in page.body
