"""A real send with VERP and DKIM into aiosmtpd: MAIL FROM names each delivery, a DSN to that code
bounces exactly its subscriber, a tampered code changes nothing; the messages verify with dkimpy."""

from __future__ import annotations

import io
import json
import re
from datetime import timedelta
from pathlib import Path
from wsgiref.util import setup_testing_defaults

import dkim
import pytest
from click.testing import CliRunner
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa

from digest.bounces.reading import read_bounces_from
from digest.bounces.setup import bounce_policy
from digest.cli import cli
from digest.delivery.run import send_digest
from digest.mail.dkim import load_dkim_signer
from digest.store.models import utcnow
from digest.web import make_app
from tests.conftest import SmtpServer
from tests.helpers.bounce_fixtures import sample, statuses
from tests.helpers.site_fixtures import AS_OF, Site, add_subscribers, make_site

PEOPLE = [("ann@example.org", []), ("bob@example.org", []), ("cy@example.org", [])]
VERP = re.compile(r"^bounces\+([0-9a-z]+-[0-9a-z]+-[a-z2-7]{10})@example\.com$")


def _site(tmp_path: Path, sqlite_url: str, port: int, key_file: Path | None = None) -> Site:
    email: dict[str, object] = {"bounce_address": "bounces@example.com"}
    if key_file is not None:
        email["dkim"] = {
            "domain": "example.com",
            "selector": "news",
            "private_key_file": str(key_file),
        }
    site = make_site(tmp_path / "site", sqlite_url, port, extra={"email": email})
    site.add_post("Big news", days_ago=1)
    store = site.store()
    try:
        add_subscribers(store, PEOPLE)
    finally:
        store.dispose()
    return site


def _send(site: Site) -> None:
    store = site.store()
    try:
        (report,) = send_digest(site.settings(), store, "weekly", as_of=AS_OF)
        assert report.sent == len(PEOPLE)
    finally:
        store.dispose()


def _dsn_to(mail_from: str, message_id: str) -> bytes:
    """The Postfix sample returned to `mail_from`, about a recipient it does not name."""
    return (
        sample("postfix-dsn.eml")
        .replace(b"X-Original-To: bounces@example.com\n", b"")
        .replace(b"bounces@example.com", mail_from.encode())
        .replace(b"alice@example.net", b"forwarded-away@elsewhere.example")
        .replace(b"<176432112000.4242.1@example.com>", b"<unrelated@example.com>")
        .replace(b"20261128091203.3F8E21C0A2", message_id.encode())
    )


def test_verp_mail_from_names_each_delivery_and_a_dsn_bounces_only_it(
    tmp_path: Path, migrated_sqlite_url: str, smtp_server: SmtpServer
) -> None:
    site = _site(tmp_path, migrated_sqlite_url, smtp_server.port)
    _send(site)
    received = {m.rcpt_tos[0]: m for m in smtp_server.handler.messages}
    assert sorted(received) == sorted(p for p, _ in PEOPLE)
    codes = {rcpt: VERP.match(m.mail_from) for rcpt, m in received.items()}
    assert all(codes.values()), {r: m.mail_from for r, m in received.items()}
    assert len({m.mail_from for m in received.values()}) == len(PEOPLE)
    assert received["bob@example.org"].message["From"] == "Test Blog <news@example.com>"

    store = site.store()
    try:
        policy = bounce_policy(site.settings())
        dsn = _dsn_to(received["bob@example.org"].mail_from, "dsn-for-bob")
        tally = read_bounces_from(store, policy, "-", stdin=io.BytesIO(dsn), now=utcnow())
        assert (tally.hard, tally.ignored) == (1, 0)
        assert statuses(store) == {
            "ann@example.org": "active",
            "bob@example.org": "bounced",
            "cy@example.org": "active",
        }
        # A code with one character changed (a forger's guess) changes nothing.
        good = received["cy@example.org"].mail_from
        forged = good[:-13] + ("a" if good[-13] != "a" else "b") + good[-12:]
        assert VERP.match(forged) and forged != good
        tally = read_bounces_from(
            store, policy, "-", stdin=io.BytesIO(_dsn_to(forged, "dsn-forged")), now=utcnow()
        )
        assert (tally.hard, tally.ignored) == (0, 1)
        assert statuses(store)["cy@example.org"] == "active"
    finally:
        store.dispose()


def _key_file(folder: Path, kind: str) -> Path:
    key = (
        rsa.generate_private_key(public_exponent=65537, key_size=2048)
        if kind == "rsa"
        else ed25519.Ed25519PrivateKey.generate()
    )
    path = folder / f"dkim-{kind}.pem"
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return path


@pytest.mark.parametrize("kind", ["rsa", "ed25519"])
def test_every_sent_message_verifies_with_dkimpy(
    tmp_path: Path, migrated_sqlite_url: str, smtp_server: SmtpServer, kind: str
) -> None:
    key_file = _key_file(tmp_path, kind)
    site = _site(tmp_path, migrated_sqlite_url, smtp_server.port, key_file)
    _send(site)
    record = load_dkim_signer("example.com", "news", key_file).dns_record.encode()

    def dns(name: bytes, timeout: int = 5) -> bytes:
        return record if name == b"news._domainkey.example.com." else b""

    assert len(smtp_server.handler.messages) == len(PEOPLE)
    for received in smtp_server.handler.messages:
        assert received.data.startswith(b"DKIM-Signature: v=1; a=")
        assert dkim.verify(received.data, dnsfunc=dns)
        signature = re.sub(r"\s+", "", str(received.message["DKIM-Signature"]))
        covered = dict(t.split("=", 1) for t in signature.split(";") if t)["h"].split(":")
        assert {"list-unsubscribe", "list-unsubscribe-post", "from", "message-id"} <= set(covered)
        assert received.message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
        tampered = received.data.replace(b"Subject: ", b"Subject: Re: ", 1)
        assert not dkim.verify(tampered, dnsfunc=dns)


def test_history_counts_what_came_back_and_the_next_send_warns(
    tmp_path: Path, migrated_sqlite_url: str, smtp_server: SmtpServer
) -> None:
    site = _site(tmp_path, migrated_sqlite_url, smtp_server.port)
    config = str(site.config_path)
    sent = CliRunner().invoke(
        cli, ["--config", config, "send", "weekly", "--as-of", AS_OF.isoformat()]
    )
    assert sent.exit_code == 0, sent.output
    assert sent.stderr == ""
    by_rcpt = {m.rcpt_tos[0]: m for m in smtp_server.handler.messages}
    dsn = _dsn_to(by_rcpt["ann@example.org"].mail_from, "dsn-ann")
    arf = (
        sample("arf-complaint.eml")
        .replace(b"bounces@example.com", by_rcpt["cy@example.org"].mail_from.encode())
        .replace(b"erin@example.com", b"cy@example.org")
    )
    for report in (dsn, arf):
        read = CliRunner().invoke(cli, ["--config", config, "bounces", "-"], input=report)
        assert read.exit_code == 0, read.output
    shown = CliRunner().invoke(cli, ["--config", config, "history", "--format", "json"])
    (run,) = json.loads(shown.stdout)
    assert (run["sent"], run["bounced_later"], run["complaints"]) == (3, 1, 1)

    site.add_post("More news", days_ago=0.5, as_of=AS_OF + timedelta(days=7))
    later = (AS_OF + timedelta(days=7)).isoformat()
    again = CliRunner().invoke(cli, ["--config", config, "send", "weekly", "--as-of", later])
    assert again.exit_code == 0, again.output
    assert again.stderr.splitlines() == [
        f"warning: the last run of weekly (run {run['id']}) bounced 33.3% (1 of 3), over 5%: "
        "relays such as Amazon SES review accounts above that; clean the list (digest bounces)",
        f"warning: the last run of weekly (run {run['id']}) drew complaints from 33.33% "
        "(1 of 3), over 0.1%: Gmail and Amazon SES act on rates above that",
    ]
    # Only bob is still mailed: ann bounced, cy complained.
    assert [m.rcpt_tos for m in smtp_server.handler.messages[3:]] == [["bob@example.org"]]


def test_a_confirmation_mail_is_signed_too(
    tmp_path: Path, migrated_sqlite_url: str, smtp_server: SmtpServer
) -> None:
    key_file = _key_file(tmp_path, "rsa")
    site = _site(tmp_path, migrated_sqlite_url, smtp_server.port, key_file)
    store = site.store()
    try:
        app = make_app(site.settings(), store, mailer_thread=False)
        environ: dict[str, object] = {}
        setup_testing_defaults(environ)
        body = b"email=new.reader%40example.org"
        environ.update(
            REQUEST_METHOD="POST",
            PATH_INFO="/subscribe",
            CONTENT_TYPE="application/x-www-form-urlencoded",
            CONTENT_LENGTH=str(len(body)),
        )
        environ["wsgi.input"] = io.BytesIO(body)
        b"".join(app(environ, lambda status, headers, exc=None: None))  # type: ignore[arg-type]
        app.mailer.run_once()  # decides the sign-up, then sends its confirmation
    finally:
        store.dispose()
    (received,) = smtp_server.handler.to("new.reader@example.org")
    record = load_dkim_signer("example.com", "news", key_file).dns_record.encode()
    assert dkim.verify(received.data, dnsfunc=lambda name, timeout=5: record)
