"""What a newcomer tripped on in the web pages: `/`, a dead-end error, missing links, a silent
re-sign-up, English sentences as JSON codes, the whole email in the Atom feed, a stray `=`."""

from __future__ import annotations

import re
from pathlib import Path

from digest.delivery.run import send_digest
from digest.settings import Settings
from digest.store import Store
from digest.store.subscribers import find_subscriber, unsubscribe
from digest.web import make_app
from tests.conftest import SmtpServer
from tests.helpers import web_client
from tests.helpers.site_fixtures import AS_OF, add_subscribers, make_site
from tests.helpers.web_client import BASE, Client, confirmation_link, path_of

client, settings, site, store = (
    web_client.client,
    web_client.settings,
    web_client.site,
    web_client.store,
)


def test_the_root_leads_to_the_sign_up_page(client: Client) -> None:
    answer = client.get("/")
    assert answer.status == 303
    assert answer.headers["Location"] == f"{BASE}/subscribe"


def test_an_error_on_the_sign_up_page_keeps_the_form_filled(client: Client) -> None:
    answer = client.post_form(
        "/subscribe",
        [("email", "ada@example"), ("name", "Ada"), ("categories", "Rust")],
    )
    assert answer.status == 400
    body = answer.body
    assert "“ada@example” is not a valid email address." in body
    assert '<form method="post"' in body  # the form is there to correct, not a dead end
    assert 'value="ada@example"' in body and 'value="Ada"' in body
    as_json = client.post_form("/subscribe", {"email": "nope"}, accept="application/json")
    assert as_json.status == 400 and as_json.json["status"] == "invalid-form"


def test_json_errors_carry_stable_codes_not_sentences(client: Client) -> None:
    assert client.get("/nowhere", accept="application/json").json["status"] == "not-found"
    answer = client.call("PUT", "/subscribe", accept="application/json")
    assert answer.json["status"] == "method-not-allowed"
    assert client.get("/unsubscribe/garbage", accept="application/json").json["status"] == (
        "invalid-link"
    )


def test_links_where_a_person_would_click(
    client: Client, settings: Settings, store: Store, smtp_server: SmtpServer
) -> None:
    assert client.post_form("/subscribe", {"email": "ada@example.com"}).status == 202
    link = confirmation_link(smtp_server, "ada@example.com", client)
    done = client.call("POST", path_of(link))
    assert done.status == 200 and "Subscription confirmed" in done.body
    found = re.search(r'<a href="([^"]+/preferences/[^"]+)">([^<]+)</a>', done.body)
    assert found is not None, done.body
    page = client.get(path_of(found.group(1).replace("&amp;", "&")))
    assert page.status == 200 and "Manage your subscription" in page.body

    prefs = page.body
    token = re.search(r'name="form_token" value="([^"]+)"', prefs)
    assert token is not None
    left = client.post_form(
        path_of(found.group(1)), [("form_token", token.group(1)), ("action", "unsubscribe")]
    )
    assert left.status == 200 and "You are unsubscribed" in left.body
    assert f'<a href="{BASE}/subscribe">' in left.body  # "subscribe again" is a link


def test_a_sign_up_again_soon_after_leaving_gets_a_new_link(
    client: Client, settings: Settings, store: Store, smtp_server: SmtpServer
) -> None:
    assert client.post_form("/subscribe", {"email": "back@example.com"}).status == 202
    first = confirmation_link(smtp_server, "back@example.com", client)
    assert client.call("POST", path_of(first)).status == 200
    unsubscribe(store, "back@example.com", reason="web")  # left, minutes after confirming
    # Minutes later (inside web.signup_resend_after): the old link is spent, so a new one goes.
    answer = client.post_form("/subscribe", {"email": "back@example.com"})
    assert answer.status == 202
    assert "The link we sent then still works" in answer.body  # honest about the other case
    client.send_queued()
    mails = smtp_server.handler.to("back@example.com")
    assert len(mails) == 2
    text = mails[-1].message.get_body(("plain",))
    assert text is not None
    found = re.search(r"https://news\.example\.com/confirm/\S+", str(text.get_content()))
    assert found is not None and found.group(0) != first
    second = found.group(0)
    assert client.call("POST", path_of(second)).status == 200
    row = find_subscriber(store, "back@example.com")
    assert row is not None and row.status == "active"


def test_a_confirm_link_with_a_stray_equals_sign_says_it_is_incomplete(
    client: Client, smtp_server: SmtpServer
) -> None:
    assert client.post_form("/subscribe", {"email": "qp@example.com"}).status == 202
    link = confirmation_link(smtp_server, "qp@example.com", client)
    cut = path_of(link)[:-6] + "="  # a quoted-printable soft break left in a copied link
    answer = client.get(cut)
    assert answer.status == 400
    assert "The link is incomplete or was changed." in answer.body


def test_archive_pages_link_back_and_atom_content_is_the_body(
    tmp_path: Path, sqlite_url: str, smtp_server: SmtpServer
) -> None:
    site = make_site(
        tmp_path / "arch", sqlite_url, smtp_server.port, extra={"web": {"archive": True}}
    )
    site.add_post("Rust Tips", categories=["Engineering"])
    settings = site.settings()
    store = site.store()
    add_subscribers(store, [("all@example.com", [])])
    (run,) = send_digest(settings, store, "weekly", as_of=AS_OF)
    client = Client(make_app(settings, store, mailer_thread=False))
    page = client.get(f"/archive/weekly/{run.run_id}")
    assert page.status == 200
    assert f'<a href="{BASE}/archive"' in page.body  # a way back to the list of runs
    feed = client.get("/archive/weekly.atom").body
    content = feed.split("<content", 1)[1].split("</content>", 1)[0]
    for whole_document in ("DOCTYPE", "&lt;head", "&lt;style", "&lt;html", "&lt;body"):
        assert whole_document not in content, whole_document
    assert "Rust Tips" in content
