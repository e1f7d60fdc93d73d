"""digest serve: the WSGI app called in-process, plus one real `digest serve` subprocess.

Real databases (database_url), a real aiosmtpd server for the confirmation mail, a real site.
"""

from __future__ import annotations

import re
import subprocess
import sys
import time
import urllib.error
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller
from click.testing import CliRunner
from itsdangerous import TimestampSigner, URLSafeTimedSerializer

from digest.cli import cli
from digest.delivery.run import send_digest
from digest.errors import ConfigError
from digest.settings import Settings
from digest.store import Store
from digest.store.subscribers import add_subscriber, find_subscriber, list_subscribers
from digest.tokens import CONFIRM_SALT, confirm_url, unsubscribe_url
from digest.web import make_app, mask_email, short_path, split_categories
from tests.conftest import RecordingHandler, SmtpServer, free_port
from tests.helpers import web_client
from tests.helpers.site_fixtures import AS_OF, SECRET, Site, make_site
from tests.helpers.web_client import Client, confirmation_link, multipart, path_of, status_of

# The shared fixtures of tests/web_client.py, bound here so that pytest finds them.
client, settings, site, store = (
    web_client.client,
    web_client.settings,
    web_client.site,
    web_client.store,
)


# --- unsubscribe -----------------------------------------------------------------------------


def test_get_unsubscribe_shows_a_page_and_changes_nothing(
    client: Client, settings: Settings, store: Store
) -> None:
    row, _ = add_subscriber(store, "joe@example.com", name="Joe")
    path = path_of(unsubscribe_url(settings, row.id, "weekly", row.link_key))

    for _ in range(3):  # a link scanner prefetching it again and again
        answer = client.get(path)
        assert answer.status == 200
        assert "<h1>Unsubscribe from “Weekly digest”?</h1>" in answer.body
        assert "Unsubscribe j***@example.com from “Weekly digest” of Test Blog?" in answer.body
        assert '<form method="post">' in answer.body
        assert "joe@example.com" not in answer.body
    assert client.call("HEAD", path).status == 200

    assert status_of(store, "joe@example.com") == ("active", "added")


@pytest.mark.parametrize("encoding", ["form", "multipart"])
def test_one_click_post_unsubscribes_without_redirect(
    client: Client, settings: Settings, store: Store, encoding: str
) -> None:
    row, _ = add_subscriber(store, "joe@example.com")
    path = path_of(unsubscribe_url(settings, row.id, "weekly", row.link_key))
    if encoding == "form":
        answer = client.post_form(path, {"List-Unsubscribe": "One-Click"})
    else:
        body, ctype = multipart([("List-Unsubscribe", "One-Click")])
        answer = client.call("POST", path, body, ctype)

    assert answer.status == 200
    assert "Location" not in answer.headers
    assert "You are unsubscribed" in answer.body
    assert status_of(store, "joe@example.com") == ("unsubscribed", "one-click")

    again = client.post_form(path, {"List-Unsubscribe": "One-Click"})
    assert again.status == 200 and "You are unsubscribed" in again.body
    assert status_of(store, "joe@example.com") == ("unsubscribed", "one-click")

    page = client.get(path)
    assert page.status == 200 and "Not subscribed" in page.body
    assert "<form" not in page.body


def test_the_page_button_post_unsubscribes_with_reason_web(
    client: Client, settings: Settings, store: Store
) -> None:
    row, _ = add_subscriber(store, "joe@example.com")
    path = path_of(unsubscribe_url(settings, row.id, "weekly", row.link_key))
    answer = client.call("POST", path)  # a browser form with no fields, no content type
    assert answer.status == 200
    assert status_of(store, "joe@example.com") == ("unsubscribed", "web")


def test_bounced_stays_bounced(client: Client, settings: Settings, store: Store) -> None:
    row, _ = add_subscriber(store, "gone@example.com", status="bounced")
    path = path_of(unsubscribe_url(settings, row.id, "weekly", row.link_key))
    assert client.post_form(path, {"List-Unsubscribe": "One-Click"}).status == 200
    assert status_of(store, "gone@example.com")[0] == "bounced"


def test_tampered_or_foreign_tokens_are_400(
    client: Client, settings: Settings, store: Store
) -> None:
    row, _ = add_subscriber(store, "joe@example.com")
    path = path_of(unsubscribe_url(settings, row.id, "weekly", row.link_key))
    token = path.rsplit("/", 1)[1]
    tampered = token[:-2] + ("AA" if not token.endswith("AA") else "BB")
    forged = URLSafeTimedSerializer("another-secret-0123456789", salt="unsubscribe").dumps(
        [row.id, "weekly"]
    )
    confirm_as_unsubscribe = path_of(confirm_url(settings, row.id, "some-nonce")).rsplit("/", 1)[1]
    for bad in (tampered, forged, confirm_as_unsubscribe, "x"):
        for method in ("GET", "POST"):
            answer = client.call(method, f"/unsubscribe/{bad}")
            assert answer.status == 400, (bad, method)
            assert "This link is not valid" in answer.body
    assert status_of(store, "joe@example.com")[0] == "active"


def test_erased_subscriber_gets_not_on_the_list(
    client: Client, settings: Settings, store: Store
) -> None:
    path = path_of(unsubscribe_url(settings, 999_999, "weekly", "any-key"))
    for method in ("GET", "POST"):
        answer = client.call(method, path)
        assert answer.status == 404
        assert "not on the Test Blog mailing list" in answer.body


def test_unsubscribed_through_the_web_is_not_mailed_by_the_next_send(
    site: Site, client: Client, settings: Settings, store: Store, smtp_server: SmtpServer
) -> None:
    site.add_post("Rust Tips")
    add_subscriber(store, "stay@example.com")
    leave, _ = add_subscriber(store, "leave@example.com")
    path = path_of(unsubscribe_url(settings, leave.id, "weekly", leave.link_key))
    assert client.post_form(path, {"List-Unsubscribe": "One-Click"}).status == 200

    (report,) = send_digest(settings, store, "weekly", as_of=AS_OF)

    assert report.sent == 1
    assert len(smtp_server.handler.to("stay@example.com")) == 1
    assert smtp_server.handler.to("leave@example.com") == []


def test_the_digest_unsubscribe_link_works_here(
    site: Site, client: Client, settings: Settings, store: Store, smtp_server: SmtpServer
) -> None:
    """The List-Unsubscribe header of a real digest, POSTed as a mailbox provider does."""
    site.add_post("Rust Tips")
    add_subscriber(store, "joe@example.com")
    send_digest(settings, store, "weekly", as_of=AS_OF)
    (received,) = smtp_server.handler.to("joe@example.com")
    header = str(received.message["List-Unsubscribe"])
    assert received.message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    match = re.search(r"<(https://[^>]+)>", header)
    assert match is not None
    answer = client.call(
        "POST",
        path_of(match.group(1)),
        b"List-Unsubscribe=One-Click",
        "application/x-www-form-urlencoded",
    )
    assert answer.status == 200
    assert status_of(store, "joe@example.com") == ("unsubscribed", "one-click")


# --- subscribe and confirm -------------------------------------------------------------------


def test_subscribe_creates_pending_and_the_mailed_link_activates(
    client: Client, store: Store, smtp_server: SmtpServer
) -> None:
    answer = client.post_form(
        "/subscribe",
        [("email", "New@Example.com"), ("name", "Zoë"), ("categories", "Rust, culture;rust")],
    )
    assert answer.status == 202
    assert "Check your inbox" in answer.body
    # Recorded as received: deciding and mailing happen outside the request.
    assert find_subscriber(store, "new@example.com") is None
    assert smtp_server.handler.messages == []
    assert client.send_queued() == 2  # one sign-up decided, one mail sent
    row = find_subscriber(store, "new@example.com")
    assert row is not None
    assert (row.status, row.name, row.categories) == ("pending", "Zoë", ("Rust", "culture"))
    (received,) = smtp_server.handler.to("New@example.com")
    msg = received.message
    assert msg["Subject"] == "Confirm your subscription to Test Blog"
    assert msg["From"].addresses[0].addr_spec == "news@example.com"
    assert msg["To"].addresses[0].display_name == ""  # nothing the requester typed
    assert "Zoë" not in received.data.decode("utf-8", "replace")
    assert msg["Message-ID"].endswith("@example.com>")
    assert msg["Date"] is not None
    assert msg.get_body(("html",)) is not None
    link = confirmation_link(smtp_server, "New@example.com")

    page = client.get(path_of(link))
    assert page.status == 200 and "Confirm subscription" in page.body
    assert "Name: Zoë" in page.body and "Categories: Rust, culture" in page.body
    assert status_of(store, "new@example.com")[0] == "pending"  # GET changes nothing

    done = client.call("POST", path_of(link))
    assert done.status == 200 and "Subscription confirmed" in done.body
    assert status_of(store, "new@example.com") == ("active", "confirmed")
    assert client.call("POST", path_of(link)).status == 200  # idempotent
    assert "Already subscribed" in client.get(path_of(link)).body


def test_subscribing_an_active_address_sends_nothing_and_leaks_nothing(
    client: Client, store: Store, smtp_server: SmtpServer
) -> None:
    add_subscriber(store, "joe@example.com", name="Joe", categories=["Rust"])
    new = client.post_form("/subscribe", {"email": "fresh@example.com"})
    old = client.post_form(
        "/subscribe", {"email": "JOE@example.com", "name": "Mallory", "categories": "spam"}
    )
    assert (old.status, old.body) == (new.status, new.body)
    assert smtp_server.handler.to("joe@example.com") == []
    row = find_subscriber(store, "joe@example.com")
    assert row is not None
    assert (row.status, row.name, row.categories) == ("active", "Joe", ("Rust",))

    as_json = client.post_form(
        "/subscribe", {"email": "joe@example.com"}, accept="application/json"
    )
    assert as_json.status == 202 and as_json.json["status"] == "check-inbox"


def test_an_unsubscribed_address_stays_unsubscribed_until_it_confirms(
    client: Client, store: Store, smtp_server: SmtpServer
) -> None:
    add_subscriber(store, "back@example.com", status="unsubscribed")
    assert client.post_form("/subscribe", {"email": "back@example.com"}).status == 202
    assert status_of(store, "back@example.com")[0] == "unsubscribed"
    link = confirmation_link(smtp_server, "back@example.com", client)
    assert client.call("POST", path_of(link)).status == 200
    assert status_of(store, "back@example.com") == ("active", "confirmed")


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({"email": "not-an-address"}, "is not a valid email address"),
        ({"email": "a@b@example.com"}, "is not a valid email address"),
        ({"email": ""}, "Please give an email address"),
        ({"name": "Joe"}, "Please give an email address"),
        ({"email": "joe@example.com", "name": "Joe\r\nBcc: x@evil.test"}, "control character"),
        ({"email": "joe@example.com\r\nBcc: x@evil.test"}, "control character"),
    ],
)
def test_subscribe_rejects_bad_input_with_the_reason(
    client: Client,
    store: Store,
    smtp_server: SmtpServer,
    fields: dict[str, str],
    expected: str,
) -> None:
    answer = client.post_form("/subscribe", fields)
    assert answer.status == 400
    assert expected in answer.body
    as_json = client.post_form("/subscribe", fields, accept="application/json")
    assert as_json.status == 400
    assert as_json.json["ok"] is False and expected in str(as_json.json["message"])
    assert list_subscribers(store) == []
    assert smtp_server.handler.messages == []


def test_subscribe_accepts_multipart_and_repeated_categories(
    client: Client, store: Store, smtp_server: SmtpServer
) -> None:
    body, ctype = multipart(
        [("email", "m@example.com"), ("categories", "Rust"), ("categories", "Go Culture")]
    )
    assert client.call("POST", "/subscribe", body, ctype).status == 202
    client.send_queued()
    row = find_subscriber(store, "m@example.com")
    assert row is not None and row.categories == ("Rust", "Go Culture")  # a space is no separator
    assert len(smtp_server.handler.to("m@example.com")) == 1


def test_smtp_down_is_the_same_202_and_the_mail_goes_when_the_relay_is_back(
    tmp_path: Path, database_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    port = free_port()
    site = make_site(tmp_path / "site", database_url, port)  # nothing listens there yet
    store = site.store()
    try:
        add_subscriber(store, "old@example.com")
        client = Client.of(site.settings(), store)
        new = client.post_form("/subscribe", {"email": "joe@example.com"})
        active = client.post_form("/subscribe", {"email": "old@example.com"})
        assert (new.status, new.body) == (active.status, active.body)
        assert new.status == 202
        with caplog.at_level("ERROR", logger="digest.web"):
            assert client.send_queued() == 3  # two sign-ups decided, one mail tried
        assert "confirmation emails not sent, will retry" in caplog.text
        assert SECRET not in caplog.text

        relay = SmtpServer("127.0.0.1", port, RecordingHandler(), None)  # type: ignore[arg-type]
        relay.controller = Controller(relay.handler, hostname="127.0.0.1", port=port)
        relay.controller.start()
        try:
            # A restart: a new app on the same database finds the queued mail, once it is due.
            later = Client.of(site.settings(), store)
            assert later.app.mailer.run_once() == 0  # the retry is not due yet
            due = datetime.now(UTC) + timedelta(minutes=1)
            assert later.app.mailer.run_once(now=due) == 1
            assert len(relay.handler.to("joe@example.com")) == 1
            assert later.app.mailer.run_once(now=due + timedelta(hours=1)) == 0
        finally:
            relay.controller.stop()
    finally:
        store.dispose()


def test_expired_confirmation_link_is_400(client: Client, store: Store) -> None:
    row, _ = add_subscriber(store, "late@example.com", status="pending")

    class EightDaysAgo(TimestampSigner):
        def get_timestamp(self) -> int:
            return int(time.time()) - 8 * 86400

    token = URLSafeTimedSerializer(SECRET, salt=CONFIRM_SALT, signer=EightDaysAgo).dumps(
        [row.id, "nonce"]
    )
    for method in ("GET", "POST"):
        answer = client.call(method, f"/confirm/{token}")
        assert answer.status == 400
        assert "expired" in answer.body
    assert status_of(store, "late@example.com")[0] == "pending"
    assert client.call("POST", "/confirm/garbage").status == 400


# --- the rest of HTTP --------------------------------------------------------------------------


def test_methods_paths_sizes_and_health(client: Client, settings: Settings, store: Store) -> None:
    row, _ = add_subscriber(store, "joe@example.com")
    path = path_of(unsubscribe_url(settings, row.id, "weekly", row.link_key))
    for method, where in (("PUT", path), ("DELETE", path), ("POST", "/healthz")):
        answer = client.call(method, where)
        assert answer.status == 405, (method, where)
        assert "GET" in answer.headers["Allow"]
    for where in ("/nothing", "/unsubscribe/", "/unsubscribe/a/b", "/admin", "/subscribe/x"):
        assert client.get(where).status == 404, where
    big = client.call(
        "POST", "/subscribe", b"email=" + b"a" * 70_000, "application/x-www-form-urlencoded"
    )
    assert big.status == 413
    assert client.call("POST", "/subscribe", b"{}", "application/json").status == 415
    health = client.get("/healthz")
    assert (health.status, health.body) == (200, "ok\n")
    assert status_of(store, "joe@example.com")[0] == "active"


def test_every_answer_has_the_security_headers(
    client: Client, settings: Settings, store: Store
) -> None:
    row, _ = add_subscriber(store, "joe@example.com")
    answers = [
        client.get(path_of(unsubscribe_url(settings, row.id, "weekly", row.link_key))),
        client.get("/unsubscribe/nope"),
        client.get("/nowhere"),
        client.call("PATCH", "/subscribe"),
        client.get("/subscribe"),
        client.get("/healthz"),
    ]
    for answer in answers:
        csp = answer.headers["Content-Security-Policy"]
        assert "default-src 'none'" in csp and "form-action 'self'" in csp
        assert "style-src 'unsafe-inline'" in csp
        assert answer.headers["X-Content-Type-Options"] == "nosniff"
        assert answer.headers["Referrer-Policy"] == "no-referrer"


def test_user_values_are_escaped_in_pages(
    client: Client, settings: Settings, store: Store, smtp_server: SmtpServer
) -> None:
    evil = "<script>alert(1)</script>"
    answer = client.post_form("/subscribe", {"email": f"{evil}@example.com"})
    assert answer.status == 400
    # The page's own script (the time zone field) is there; the typed one is not.
    assert "<script>alert" not in answer.body and "&lt;script&gt;" in answer.body

    assert client.post_form("/subscribe", {"email": "x@example.com", "name": evil}).status == 202
    client.send_queued()
    (received,) = smtp_server.handler.to("x@example.com")
    html_part = received.message.get_body(("html",))
    assert html_part is not None and "<script>" not in str(html_part.get_content())

    bad_name = client.post_form(
        "/subscribe", {"email": "y@example.com", "name": "<script>x</script>\n"}
    )
    assert bad_name.status == 400  # the name is not repeated in the answer
    assert "<script>x" not in bad_name.body and "control character" in bad_name.body

    row, _ = add_subscriber(store, "&amp@example.com")
    page = client.get(path_of(unsubscribe_url(settings, row.id, "weekly", row.link_key)))
    assert page.status == 200
    assert "&amp;***@example.com" in page.body


def test_secret_missing_or_short_is_a_config_error(
    tmp_path: Path, smtp_server: SmtpServer, sqlite_url: str
) -> None:
    site = make_site(tmp_path / "site", sqlite_url, smtp_server.port, secret="short")
    store = site.store()
    try:
        with pytest.raises(ConfigError, match=r"web\.secret"):
            make_app(site.settings(), store)
    finally:
        store.dispose()
    result = CliRunner().invoke(cli, ["--config", str(site.config_path), "serve", "--port", "0"])
    assert result.exit_code == 2
    assert "error: web.secret is shorter than 16 characters" in result.output


def test_small_helpers() -> None:
    assert mask_email("joe@example.com") == "j***@example.com"
    assert short_path("/unsubscribe/abcdefghijklmnop") == "/unsubscribe/abcdefgh…"
    assert short_path("/healthz") == "/healthz"
    # One rule with CSV imports: `;` and `,` separate, a space belongs to the name.
    assert split_categories(["a, b;c  d", "e"]) == ["a", "b", "c  d", "e"]


# --- the real server -------------------------------------------------------------------------


def test_digest_serve_answers_real_http(tmp_path: Path, smtp_server: SmtpServer) -> None:
    site = make_site(tmp_path / "site", f"sqlite:///{tmp_path / 'serve.db'}", smtp_server.port)
    store = site.store()
    row, _ = add_subscriber(store, "joe@example.com")
    token_path = path_of(unsubscribe_url(site.settings(), row.id, "weekly", row.link_key))
    port = free_port()
    log = tmp_path / "serve.log"
    with log.open("wb") as stderr:  # the child keeps its own copy of the file
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "digest",
                "--config",
                str(site.config_path),
                "serve",
                "--port",
                str(port),
            ],
            stdout=subprocess.DEVNULL,
            stderr=stderr,
            cwd=site.root,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                with urllib.request.urlopen(base + "/healthz", timeout=2) as health:
                    assert health.read() == b"ok\n"
                break
            except (urllib.error.URLError, ConnectionError):
                if proc.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"digest serve did not start: {log.read_text()}")
                time.sleep(0.1)

        with urllib.request.urlopen(base + token_path, timeout=5) as page:
            assert page.status == 200
            assert "Unsubscribe j***@example.com" in page.read().decode()
            assert page.headers["X-Content-Type-Options"] == "nosniff"
        assert status_of(store, "joe@example.com")[0] == "active"

        request = urllib.request.Request(
            base + token_path,
            data=b"List-Unsubscribe=One-Click",
            headers={"Content-Type": "application/x-www-form-urlencoded"},
            method="POST",
        )
        with urllib.request.urlopen(request, timeout=5) as done:
            assert done.status == 200
            assert done.geturl() == base + token_path  # no redirect followed
        assert status_of(store, "joe@example.com") == ("unsubscribed", "one-click")
    finally:
        proc.terminate()
        assert proc.wait(timeout=10) == 0
        store.dispose()
    text = log.read_text()
    assert "Traceback" not in text
    token = token_path.rsplit("/", 1)[1]
    assert token not in text  # the access log shortens tokens
    assert re.search(r"POST /unsubscribe/\S{8}… 200", text), text
