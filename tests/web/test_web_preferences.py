"""The sign-up page and the preferences page of digest serve, called in-process.

Real databases, a real aiosmtpd server for the mails, real posts on disk, real sends.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from digest.delivery.run import send_digest
from digest.settings import Settings
from digest.store import Store
from digest.store.subscribers import add_subscriber, find_subscriber, remove_subscriber
from digest.tokens import preferences_url
from tests.conftest import SmtpServer
from tests.helpers import web_client
from tests.helpers.site_fixtures import AS_OF, Site, make_site
from tests.helpers.web_client import Client, confirmation_link, path_of

TWO_DIGESTS = {
    "weekly": {"categories": [], "lookback_days": 7, "min_posts": 1},
    "daily": {"categories": [], "lookback_days": 1, "min_posts": 1},
}


# The shared fixtures of tests/web_client.py, bound here so that pytest finds them.
client, settings, store = web_client.client, web_client.settings, web_client.store


@pytest.fixture
def site(tmp_path: Path, database_url: str, smtp_server: SmtpServer) -> Site:
    site = make_site(tmp_path / "site", database_url, smtp_server.port, digests=TWO_DIGESTS)
    site.add_post("Borrow Checker", categories=["Rust"], days_ago=2)
    site.add_post("Goroutines", categories=["Go"], days_ago=3)
    site.add_post("Deep Nets", categories=["Machine Learning"], days_ago=4)
    return site


def form_token_of(body: str) -> str:
    match = re.search(r'name="form_token" value="([^"]+)"', body)
    assert match is not None, body
    return match.group(1)


def manage_link(smtp_server: SmtpServer, address: str) -> str:
    """The "Manage your subscription" link of the newest digest mailed to the address."""
    received = smtp_server.handler.to(address)[-1]
    text = received.message.get_body(("plain",))
    assert text is not None
    match = re.search(r"Manage your subscription: (\S+)", str(text.get_content()))
    assert match is not None
    html_part = received.message.get_body(("html",))
    assert html_part is not None
    anchor = rf'href="{re.escape(match.group(1))}"[^>]*>Manage your subscription</a>'
    assert re.search(anchor, str(html_part.get_content()))
    return path_of(match.group(1))


# --- the sign-up page ------------------------------------------------------------------------


def test_the_signup_page_offers_the_posts_categories_and_the_digests(client: Client) -> None:
    page = client.get("/subscribe")
    assert page.status == 200
    assert '<html lang="en" dir="ltr">' in page.body
    assert "<title>Subscribe to Test Blog · Test Blog</title>" in page.body
    for category in ("Go", "Machine Learning", "Rust"):
        assert f'name="categories" value="{category}"' in page.body
    assert page.body.index('value="Go"') < page.body.index('value="Machine Learning"')
    assert 'name="digests" value="weekly" checked' in page.body
    assert 'name="digests" value="daily" checked' in page.body
    assert "Weekly digest" in page.body and "Daily digest" in page.body
    assert "#eef0f3" in page.body  # the email's page colour
    assert client.get("/subscribe", accept="application/json").json["status"] == "form"


def test_signing_up_with_ticked_categories_and_one_digest(
    client: Client, store: Store, smtp_server: SmtpServer
) -> None:
    fields = [
        ("email", "ann@example.com"),
        ("categories", "Rust"),
        ("categories", "Machine Learning"),  # one category with a space: kept whole
        ("digests", "daily"),
    ]
    assert client.post_form("/subscribe", fields).status == 202
    link = confirmation_link(smtp_server, "ann@example.com", client)
    done = client.call("POST", path_of(link))
    assert done.status == 200 and "Subscription confirmed" in done.body
    row = find_subscriber(store, "ann@example.com")
    assert row is not None
    assert (row.status, row.categories) == ("active", ("Rust", "Machine Learning"))
    assert (row.all_digests, row.digests) == (False, ("daily",))

    every = [("email", "bo@example.com"), ("digests", "weekly"), ("digests", "daily")]
    assert client.post_form("/subscribe", every).status == 202
    client.send_queued()
    both = find_subscriber(store, "bo@example.com")
    assert both is not None and both.all_digests  # every digest ticked: future ones too


def test_an_unknown_digest_is_a_400_naming_it(client: Client, store: Store) -> None:
    answer = client.post_form("/subscribe", {"email": "x@example.com", "digests": "hourly"})
    assert answer.status == 400 and "There is no digest &#39;hourly&#39;" in answer.body


def test_page_templates_can_be_overridden_from_templates_dir(
    tmp_path: Path, database_url: str, smtp_server: SmtpServer
) -> None:
    mine = tmp_path / "mine"
    (mine / "web").mkdir(parents=True)
    (mine / "web" / "page.html.j2").write_text(
        "<!doctype html><title>{{ title }}</title><h1 class=mine>{{ title }}</h1>"
        "{% for t in paragraphs %}<p>{{ t }}</p>{% endfor %}",
        encoding="utf-8",
    )
    site = make_site(tmp_path / "site", database_url, smtp_server.port)
    with site.config_path.open("a", encoding="utf-8") as config:
        config.write(f"templates_dir: {mine}\n")
    store = site.store()
    try:
        client = Client.of(site.settings(), store)
        answer = client.get("/nowhere")
        assert answer.status == 404 and "<h1 class=mine>Not found</h1>" in answer.body
        assert "<h1>Subscribe to Test Blog</h1>" in client.get("/subscribe").body  # bundled
    finally:
        store.dispose()


# --- the preferences page --------------------------------------------------------------------


def test_the_preferences_link_in_a_digest_changes_what_the_next_send_gives(
    site: Site, client: Client, settings: Settings, store: Store, smtp_server: SmtpServer
) -> None:
    add_subscriber(store, "joe@example.com", name="Joe", categories=["Rust", "Retro"])
    send_digest(settings, store, "weekly", as_of=AS_OF)
    path = manage_link(smtp_server, "joe@example.com")

    page = client.get(path)
    assert page.status == 200
    assert "Choices for j***@example.com." in page.body and "joe@example.com" not in page.body
    assert 'value="Rust" checked' in page.body and 'value="Retro" checked' in page.body
    assert 'value="Go">' in page.body and 'value="Machine Learning">' in page.body
    assert 'value="weekly" checked' in page.body and 'value="daily" checked' in page.body
    assert 'value="Joe"' in page.body
    token = form_token_of(page.body)
    assert client.call("HEAD", path).status == 200
    row = find_subscriber(store, "joe@example.com")
    assert row is not None and row.categories == ("Rust", "Retro")  # GET changes nothing

    saved = client.post_form(
        path,
        [
            ("form_token", token),
            ("action", "save"),
            ("digests", "weekly"),
            ("categories", "Go"),
            ("categories", "Machine Learning"),
            ("name", "Joseph"),
            ("pause", "keep"),
        ],
    )
    assert saved.status == 200 and "Saved. Your next digest follows these choices." in saved.body
    row = find_subscriber(store, "joe@example.com")
    assert row is not None
    assert (row.name, row.categories) == ("Joseph", ("Go", "Machine Learning"))
    assert (row.all_digests, row.digests) == (False, ("weekly",))

    site.add_post("Channels", categories=["Go"], days_ago=0.5, as_of=AS_OF + timedelta(days=1))
    site.add_post("Lifetimes", categories=["Rust"], days_ago=0.5, as_of=AS_OF + timedelta(days=1))
    before = len(smtp_server.handler.to("joe@example.com"))
    send_digest(settings, store, "weekly", as_of=AS_OF + timedelta(days=1))
    (mail,) = smtp_server.handler.to("joe@example.com")[before:]
    text = mail.message.get_body(("plain",))
    assert text is not None
    body = str(text.get_content())
    assert "Channels" in body and "Lifetimes" not in body


def test_pause_and_resume_from_the_preferences_page(
    client: Client, settings: Settings, store: Store
) -> None:
    row, _ = add_subscriber(store, "pat@example.com")
    path = path_of(preferences_url(settings, row.id, row.link_key))
    token = form_token_of(client.get(path).body)
    base = [("form_token", token), ("digests", "weekly"), ("digests", "daily")]
    answer = client.post_form(path, [*base, ("pause", "2")])
    assert answer.status == 200 and "Paused until" in answer.body
    paused = find_subscriber(store, "pat@example.com")
    assert paused is not None and paused.paused_until is not None and paused.all_digests
    left = paused.paused_until - datetime.now(UTC)
    assert timedelta(days=13, hours=23) < left <= timedelta(days=14)

    assert client.post_form(path, [*base, ("pause", "3")]).status == 400
    for odd in ("²", "٢", "１"):  # digits to str.isdigit, not to int(): a 400, not a 500
        assert client.post_form(path, [*base, ("pause", odd)]).status == 400
    assert client.post_form(path, [*base, ("pause", "none")]).status == 200
    resumed = find_subscriber(store, "pat@example.com")
    assert resumed is not None and resumed.paused_until is not None
    assert resumed.paused_until <= datetime.now(UTC)  # ended now: the pause's posts stay skipped


def test_a_post_without_the_pages_form_token_changes_nothing(
    client: Client, settings: Settings, store: Store
) -> None:
    row, _ = add_subscriber(store, "joe@example.com", categories=["Rust"])
    other, _ = add_subscriber(store, "eve@example.com")
    path = path_of(preferences_url(settings, row.id, row.link_key))
    eves_token = form_token_of(
        client.get(path_of(preferences_url(settings, other.id, other.link_key))).body
    )
    for fields in (
        [("digests", "weekly"), ("categories", "Go")],  # a form posted from another site
        [("form_token", eves_token), ("digests", "weekly"), ("categories", "Go")],
        [("form_token", "forged"), ("action", "unsubscribe")],
    ):
        answer = client.post_form(path, fields)
        assert answer.status == 400 and "This form has expired" in answer.body
    row_after = find_subscriber(store, "joe@example.com")
    assert row_after is not None
    assert (row_after.status, row_after.categories) == ("active", ("Rust",))


def test_unsubscribe_from_everything_on_the_preferences_page(
    client: Client, settings: Settings, store: Store
) -> None:
    row, _ = add_subscriber(store, "joe@example.com")
    path = path_of(preferences_url(settings, row.id, row.link_key))
    token = form_token_of(client.get(path).body)
    answer = client.post_form(path, [("form_token", token), ("action", "unsubscribe")])
    assert answer.status == 200 and "You are unsubscribed" in answer.body
    after = find_subscriber(store, "joe@example.com")
    assert after is not None and (after.status, after.status_reason) == (
        "unsubscribed",
        "preferences",
    )
    again = client.get(path)
    assert again.status == 200 and "Not subscribed" in again.body and "<form" not in again.body


def test_no_digest_ticked_is_a_400_and_json_callers_get_json(
    client: Client, settings: Settings, store: Store
) -> None:
    row, _ = add_subscriber(store, "joe@example.com")
    path = path_of(preferences_url(settings, row.id, row.link_key))
    token = form_token_of(client.get(path).body)
    answer = client.post_form(path, [("form_token", token), ("categories", "Go")])
    assert answer.status == 400 and "Choose at least one digest" in answer.body
    data = client.get(path, accept="application/json").json
    assert data["preferences"] == {
        "digests": ["daily", "weekly"],
        "categories": [],
        "name": "",
        "paused_until": None,
        "consent": row.consent.as_dict(),
    }
    assert data["preferences"]["consent"]["source"] == "cli"  # type: ignore[index]


def test_preferences_links_are_bound_to_the_subscription(
    client: Client, settings: Settings, store: Store
) -> None:
    row, _ = add_subscriber(store, "joe@example.com")
    path = path_of(preferences_url(settings, row.id, row.link_key))
    token = path.rsplit("/", 1)[1]
    tampered = token[:-2] + ("AA" if not token.endswith("AA") else "BB")
    for bad in (tampered, "x"):
        assert client.get(f"/preferences/{bad}").status == 400
    remove_subscriber(store, "joe@example.com")
    assert client.get(path).status == 404
    again, _ = add_subscriber(store, "joe@example.com")
    stale = path_of(preferences_url(settings, again.id, "an-older-key"))
    answer = client.get(stale)
    assert answer.status == 400 and "no longer valid" in answer.body


def test_with_site_lang_de_the_pages_speak_german(
    tmp_path: Path, database_url: str, smtp_server: SmtpServer
) -> None:
    german = make_site(
        tmp_path / "de",
        database_url,
        smtp_server.port,
        digests=TWO_DIGESTS,
        extra={"site": {"lang": "de"}, "web": {"archive": True}},
    )
    german.add_post("Borrow Checker", categories=["Rust"], days_ago=2)
    settings = german.settings()
    store = german.store()
    try:
        client = Client.of(settings, store)
        signup = client.get("/subscribe")
        assert '<html lang="de" dir="ltr">' in signup.body
        assert "Kategorien" in signup.body and ">Abonnieren</button>" in signup.body
        assert "Weekly-Digest" in signup.body
        row, _ = add_subscriber(store, "pat@example.com")
        prefs = client.get(path_of(preferences_url(settings, row.id, row.link_key)))
        assert "Alles abbestellen" in prefs.body and "2 Wochen" in prefs.body
        archive = client.get("/archive")
        assert "<h1>Archiv</h1>" in archive.body and "Noch nichts verschickt." in archive.body
    finally:
        store.dispose()
