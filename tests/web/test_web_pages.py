"""Every page of digest serve in the site's language, the unsubscribe pages naming the link's
digest, and the archive page's Content-Security-Policy.

The WSGI app called in-process on a real SQLite file, real sends to aiosmtpd, real posts.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from email.message import EmailMessage
from html.parser import HTMLParser
from pathlib import Path

import pytest
from babel.messages.pofile import read_po
from itsdangerous import TimestampSigner, URLSafeTimedSerializer

from digest.delivery.run import send_digest
from digest.i18n import LOCALE_DIR
from digest.settings import Settings
from digest.store import Store
from digest.store.archive import archived_runs
from digest.store.subscribers import add_subscriber, find_subscriber
from digest.tokens import CONFIRM_SALT, preferences_url, unsubscribe_url
from digest.web.pages import ARCHIVE_CSP, PAGE_CSP
from tests.conftest import SmtpServer
from tests.helpers.site_fixtures import AS_OF, SECRET, Site, make_site
from tests.helpers.web_client import Answer, Client, confirmation_link, path_of

TWO_DIGESTS = {
    "weekly": {"categories": [], "lookback_days": 7, "min_posts": 1},
    "daily": {"categories": [], "lookback_days": 7, "min_posts": 1},
}
# Written out so that a reader sees what must not show; every other English message of the
# catalog is checked as well (english_fragments).
ENGLISH = (
    "Subscribe to",
    "Check your inbox",
    "Confirm your subscription",
    "Subscription confirmed",
    "Unsubscribe",
    "You left",
    "You still get",
    "You are unsubscribed",
    "Manage your subscription",
    "Saved.",
    "Archive",
    "Nothing sent yet",
    "This link is not valid",
    "This link has expired",
    "This link is no longer valid",
    "Not found",
    "There is no page",
    "Please check the form",
    "Not on the list",
    "Not subscribed",
    "Method not allowed",
    "email address",
    "Thank you",
)


def english_fragments() -> set[str]:
    """The English words of every message the German catalog translates differently: each
    message's text between its %(placeholders)s, when it is a word or longer."""
    with (LOCALE_DIR / "de" / "LC_MESSAGES" / "digest.po").open("rb") as handle:
        catalog = read_po(handle, locale="de")
    fragments = set(ENGLISH)
    for message in catalog:
        if not message.id:
            continue
        ids = message.id if isinstance(message.id, tuple) else (message.id,)
        strings = message.string if isinstance(message.string, tuple) else (message.string,)
        for english in ids:
            if english in strings:
                continue  # the same in German ("Name", "Pause")
            for part in re.split(r"%\(\w+\)[sd]", english):
                part = part.strip(" .,:;?!“”()")
                if len(part) >= 4:
                    fragments.add(part)
    return fragments


class _Text(HTMLParser):
    """A page's visible text (its <title> included), without tags, scripts and styles."""

    def __init__(self) -> None:
        super().__init__()
        self.parts: list[str] = []
        self._skip = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ("style", "script"):
            self._skip += 1

    def handle_endtag(self, tag: str) -> None:
        if tag in ("style", "script"):
            self._skip -= 1

    def handle_data(self, data: str) -> None:
        if not self._skip:
            self.parts.append(data)


def english_in(text: str, fragments: set[str]) -> list[str]:
    """The fragments found in the text as whole words ("week" not in a link to /weekly)."""
    return sorted(f for f in fragments if re.search(rf"(?<!\w){re.escape(f)}(?!\w)", text))


def visible_text(html: str) -> str:
    parser = _Text()
    parser.feed(html)
    return " ".join(" ".join(parser.parts).split())


@pytest.fixture
def german(tmp_path: Path, sqlite_url: str, smtp_server: SmtpServer) -> Site:
    site = make_site(
        tmp_path / "de",
        sqlite_url,
        smtp_server.port,
        digests=TWO_DIGESTS,
        extra={"site": {"lang": "de"}, "web": {"archive": True}},
    )
    site.add_post("Borrow Checker", categories=["Rust"], days_ago=2)
    site.add_post("Goroutines", categories=["Go"], days_ago=3)
    return site


@pytest.fixture
def german_store(german: Site) -> Iterator[Store]:
    store = german.store()
    yield store
    store.dispose()


def _expired_confirm_path(subscriber_id: int) -> str:
    class EightDaysAgo(TimestampSigner):
        def get_timestamp(self) -> int:
            return int(time.time()) - 8 * 86400

    serializer = URLSafeTimedSerializer(SECRET, salt=CONFIRM_SALT, signer=EightDaysAgo)
    return f"/confirm/{serializer.dumps([subscriber_id, 'nonce'])}"


def _german_pages(
    site: Site, settings: Settings, store: Store, smtp_server: SmtpServer
) -> Iterator[tuple[str, Answer]]:
    """Every page a subscriber can meet, in the order they meet them (name, answer)."""
    client = Client.of(settings, store)
    yield "subscribe", client.get("/subscribe")
    fields = [("email", "rea@example.com"), ("categories", "Rust")]
    yield "check-inbox", client.post_form("/subscribe", fields)
    confirm = path_of(confirmation_link(smtp_server, "rea@example.com", client))
    yield "confirm", client.get(confirm)
    yield "confirmed", client.call("POST", confirm)
    yield "already-subscribed", client.get(confirm)

    send_digest(settings, store, "weekly", as_of=AS_OF)
    row = find_subscriber(store, "rea@example.com")
    assert row is not None
    manage = path_of(preferences_url(settings, row.id, row.link_key))
    yield "preferences", client.get(manage)
    token = re.search(r'name="form_token" value="([^"]+)"', client.get(manage).body)
    assert token is not None
    form = [("form_token", token.group(1)), ("digests", "weekly"), ("digests", "daily")]
    yield "saved", client.post_form(manage, [*form, ("pause", "2")])
    yield "no-digest", client.post_form(manage, form[:1])
    yield "form-expired", client.post_form(manage, [("form_token", "x"), *form[1:]])
    yield "archive", client.get("/archive")
    (run, *_) = archived_runs(store, "weekly")
    yield "archived-email", client.get(f"/archive/weekly/{run.run_id}")

    weekly = path_of(unsubscribe_url(settings, row.id, "weekly", row.link_key))
    yield "unsubscribe", client.get(weekly)
    yield "left-weekly", client.call("POST", weekly)
    yield "unsubscribed", client.post_form(weekly, {"scope": "everything"})
    yield "not-subscribed", client.get(weekly)
    yield "preferences-not-subscribed", client.get(manage)

    yield "bad-email", client.post_form("/subscribe", {"email": "not-an-address"})
    yield "no-email", client.post_form("/subscribe", {"email": ""})
    yield "unknown-digest", client.post_form("/subscribe", {"email": "a@x.org", "digests": "x"})
    yield "invalid-link", client.get("/unsubscribe/not-a-token")
    pending, _ = add_subscriber(store, "late@example.com", status="pending")
    yield "expired-link", client.get(_expired_confirm_path(pending.id))
    stale = path_of(unsubscribe_url(settings, row.id, "weekly", "an-older-key"))
    yield "stale-link", client.get(stale)
    gone = path_of(unsubscribe_url(settings, 999_999, "weekly", "any-key"))
    yield "not-on-the-list", client.get(gone)
    yield "not-found", client.get("/no/such/page")
    yield "archive-not-found", client.get("/archive/weekly/999999")
    yield "method-not-allowed", client.call("DELETE", "/subscribe")
    yield "unsupported-form", client.call("POST", "/subscribe", b"{}", "application/json")


STATUSES = {
    "subscribe": 200,
    "check-inbox": 202,
    "confirm": 200,
    "confirmed": 200,
    "already-subscribed": 200,
    "preferences": 200,
    "saved": 200,
    "no-digest": 400,
    "form-expired": 400,
    "archive": 200,
    "archived-email": 200,
    "unsubscribe": 200,
    "left-weekly": 200,
    "unsubscribed": 200,
    "not-subscribed": 200,
    "preferences-not-subscribed": 200,
    "bad-email": 400,
    "no-email": 400,
    "unknown-digest": 400,
    "invalid-link": 400,
    "expired-link": 400,
    "stale-link": 400,
    "not-on-the-list": 404,
    "not-found": 404,
    "archive-not-found": 404,
    "method-not-allowed": 405,
    "unsupported-form": 415,
}


def test_with_site_lang_de_every_page_is_german(
    german: Site, german_store: Store, smtp_server: SmtpServer
) -> None:
    settings = german.settings()
    english = english_fragments()
    assert len(english) > 100  # the catalog's messages, not only the written-out list
    texts: dict[str, str] = {}
    statuses: dict[str, int] = {}
    for name, answer in _german_pages(german, settings, german_store, smtp_server):
        statuses[name] = answer.status
        assert re.search(r'<html lang="de" dir="ltr"[ >]', answer.body), name
        texts[name] = text = visible_text(answer.body)
        left = english_in(text, english)
        assert left == [], f"{name} ({answer.status}) shows English: {left}\n{text}"
    assert statuses == STATUSES
    # German, not only free of English:
    assert "Sehen Sie in Ihr Postfach" in texts["check-inbox"]
    assert "„Weekly-Digest“ abbestellen?" in texts["unsubscribe"]
    assert "Weiterhin erhalten Sie: Daily-Digest." in texts["unsubscribe"]
    assert "Sie haben „Weekly-Digest“ abbestellt" in texts["left-weekly"]
    assert "Sie erhalten weiterhin: Daily-Digest." in texts["left-weekly"]
    months = "Januar|Februar|März|April|Mai|Juni|Juli|August|September|Oktober|November|Dezember"
    assert re.search(rf"Pausiert bis \d+\. ({months}) \d{{4}}\.", texts["saved"]), texts["saved"]
    assert "Unter dieser Adresse gibt es keine Seite." in texts["not-found"]
    assert "„not-an-address“ ist keine gültige E-Mail-Adresse." in texts["bad-email"]


def test_with_site_lang_de_the_json_answers_speak_german_with_english_states(
    german: Site, german_store: Store
) -> None:
    client = Client.of(german.settings(), german_store)
    json = "application/json"
    inbox = client.post_form("/subscribe", {"email": "rea@example.com"}, accept=json).json
    assert inbox["status"] == "check-inbox"
    assert str(inbox["message"]).startswith("Wenn die Adresse angemeldet werden kann")
    missing = client.get("/no/such/page", accept=json).json
    assert missing == {
        "ok": False,
        "status": "not-found",  # a stable code, the same in every language
        "message": "Unter dieser Adresse gibt es keine Seite.",
    }


def _mail_text(message: EmailMessage) -> str:
    text = message.get_body(("plain",))
    html = message.get_body(("html",))
    assert text is not None and html is not None
    return f"{message['Subject']}\n{text.get_content()}\n{visible_text(html.get_content())}"


def test_with_site_lang_de_the_emails_are_german_too(
    german: Site, german_store: Store, smtp_server: SmtpServer
) -> None:
    settings = german.settings()
    client = Client.of(settings, german_store)
    assert client.post_form("/subscribe", {"email": "rea@example.com"}).status == 202
    client.send_queued()
    add_subscriber(german_store, "pat@example.com")
    send_digest(settings, german_store, "weekly", as_of=AS_OF)
    english = english_fragments()
    confirmation, digest = (r.message for r in smtp_server.handler.messages[:2])
    for message in (confirmation, digest):
        text = _mail_text(message)
        left = english_in(text, english)
        assert left == [], f"{message['Subject']}: English {left}\n{text}"
    assert "Im Browser ansehen" in _mail_text(digest) and "Abbestellen" in _mail_text(digest)


# --- the unsubscribe pages name the digest the link came from ------------------------------------


@pytest.fixture
def two_digests(tmp_path: Path, sqlite_url: str, smtp_server: SmtpServer) -> Site:
    return make_site(tmp_path / "site", sqlite_url, smtp_server.port, digests=TWO_DIGESTS)


def test_the_unsubscribe_pages_name_the_links_digest(two_digests: Site) -> None:
    settings = two_digests.settings()
    store = two_digests.store()
    client = Client.of(settings, store)
    row, _ = add_subscriber(store, "joe@example.com")
    daily = path_of(unsubscribe_url(settings, row.id, "daily", row.link_key))
    weekly = path_of(unsubscribe_url(settings, row.id, "weekly", row.link_key))

    page = visible_text(client.get(daily).body)
    assert "Unsubscribe from “Daily digest”?" in page
    assert "Unsubscribe j***@example.com from “Daily digest” of Test Blog?" in page
    assert "You keep getting: Weekly digest." in page

    left = visible_text(client.call("POST", daily).body)
    assert "You left “Daily digest”" in left
    assert "j***@example.com will get no more “Daily digest” emails from Test Blog." in left
    assert "You still get: Weekly digest." in left

    page = visible_text(client.get(weekly).body)
    assert "Unsubscribe from “Weekly digest”?" in page and "You keep getting" not in page
    done = visible_text(client.call("POST", weekly).body)
    assert "You are unsubscribed" in done
    assert "j***@example.com left “Weekly digest” and will get no more emails" in done
    row = find_subscriber(store, "joe@example.com")
    assert row is not None and row.status == "unsubscribed"


# --- Content-Security-Policy ---------------------------------------------------------------------


def test_only_an_archived_email_may_load_images(
    tmp_path: Path, sqlite_url: str, smtp_server: SmtpServer
) -> None:
    site = make_site(
        tmp_path / "site", sqlite_url, smtp_server.port, extra={"web": {"archive": True}}
    )
    site.add_post("Rust Tips", body="![a chart](https://blog.example.com/chart.png)\n\nWords.")
    store = site.store()
    add_subscriber(store, "joe@example.com")
    send_digest(site.settings(), store, "weekly", as_of=AS_OF)
    (run,) = archived_runs(store, "weekly")
    client = Client.of(site.settings(), store)

    archived = client.get(f"/archive/weekly/{run.run_id}")
    assert archived.status == 200 and "https://blog.example.com/chart.png" in archived.body
    policy = archived.headers["Content-Security-Policy"]
    assert policy == ARCHIVE_CSP
    directives = dict(d.strip().split(" ", 1) for d in policy.split(";"))
    assert directives["img-src"] == "https: data:"
    assert directives["default-src"] == "'none'"  # no scripts, frames, fonts or connections
    assert "script-src" not in directives and "connect-src" not in directives

    others = [
        client.get("/archive"),
        client.get("/archive/weekly.atom"),
        client.get("/subscribe"),
        client.get("/archive/weekly/999999"),  # a 404 on an archive address
        client.get("/unsubscribe/x"),
    ]
    for answer in others:
        assert answer.headers["Content-Security-Policy"] == PAGE_CSP
        assert "img-src" not in answer.headers["Content-Security-Policy"]
