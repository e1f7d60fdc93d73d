"""SMTP sending against real aiosmtpd servers: outcomes, reuse, reconnect, TLS, AUTH, rate limit."""

from __future__ import annotations

import asyncio
import logging
import ssl
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import trustme
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

from digest.errors import ConfigError, SmtpAuthError, SmtpConnectError
from digest.settings.smtp import SmtpSettings
from digest.smtp.client import RateLimiter, SmtpSender, check_smtp, helo_name
from digest.smtp.replies import SendResult
from digest.smtp.stream import WireMessage, send_one
from tests.conftest import RecordingHandler, SmtpServer, free_port
from tests.helpers.tls_fixtures import Tls, make_tls

FROM = "news@example.com"
PASSWORD = "pa55-W0rd-not-in-errors"


def message(to: str, subject: str = "Hello") -> bytes:
    return (
        f"From: {FROM}\r\nTo: {to}\r\nSubject: {subject}\r\nMessage-ID: <1@example.com>\r\n"
        "\r\nHello there.\r\n.leading dot\r\n"
    ).encode()


def send(sender: SmtpSender, mail_from: str, to: str, data: bytes) -> SendResult:
    """One message through the one SMTP transaction, as test sends and the web mailer send."""
    return send_one(sender, WireMessage.of(mail_from, to, data))


def settings(server: SmtpServer | int, **overrides: Any) -> SmtpSettings:
    port = server if isinstance(server, int) else server.port
    values: dict[str, Any] = {"host": "127.0.0.1", "port": port, "security": "none", "timeout": 5}
    return SmtpSettings.model_validate({**values, **overrides})


@dataclass
class SessionHandler(RecordingHandler):
    """Also remembers each session's client address and protocol object; can answer 421 once."""

    peers: list[str] = field(default_factory=list)
    servers: list[SMTP] = field(default_factory=list)
    closing: dict[str, int] = field(default_factory=dict)

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: Any
    ) -> str:
        if self.closing.get(address.lower(), 0) > 0:
            self.closing[address.lower()] -= 1
            return "421 4.3.2 Service shutting down, closing transmission channel"
        return await super().handle_RCPT(server, session, envelope, address, options)

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        self.peers.append(str(session.peer))
        self.servers.append(server)
        return await super().handle_DATA(server, session, envelope)


@contextmanager
def serve(handler: RecordingHandler, **kwargs: Any) -> Iterator[SmtpServer]:
    port = free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port, decode_data=False, **kwargs)
    controller.start()
    try:
        yield SmtpServer("127.0.0.1", port, handler, controller)
    finally:
        controller.stop()


@pytest.fixture
def tls(tmp_path: Path) -> Tls:
    """A private CA and a server certificate for 127.0.0.1."""
    return make_tls(tmp_path)


def authenticator(
    server: SMTP, session: Session, envelope: Envelope, mechanism: str, auth_data: Any
) -> AuthResult:
    ok = (
        isinstance(auth_data, LoginPassword)
        and auth_data.login == b"mailer"
        and auth_data.password == PASSWORD.encode()
    )
    return AuthResult(success=ok, handled=False)  # handled=False: aiosmtpd answers 535


# -- outcomes -------------------------------------------------------------------------------


def test_accepted_message_is_sent_with_the_servers_reply(smtp_server: SmtpServer) -> None:
    with SmtpSender(settings(smtp_server)) as sender:
        result = send(sender, FROM, "ada@example.org", message("ada@example.org"))
    assert (result.outcome, result.code) == ("sent", 250)
    assert "accepted" in result.reply
    [got] = smtp_server.handler.to("ada@example.org")
    assert got.mail_from == FROM and got.rcpt_tos == ["ada@example.org"]
    assert got.message["Subject"] == "Hello"
    assert b"\r\n.leading dot\r\n" in got.data  # dot-stuffing undone by the server


def test_550_is_permanent_and_the_session_goes_on(smtp_server: SmtpServer) -> None:
    smtp_server.handler.permanent["gone@example.org"] = "550 5.1.1 No such user"
    with SmtpSender(settings(smtp_server)) as sender:
        refused = send(sender, FROM, "gone@example.org", message("gone@example.org"))
        after = send(sender, FROM, "ada@example.org", message("ada@example.org"))
        assert sender.connections == 1
    assert refused.outcome == "permanent" and refused.code == 550
    assert "No such user" in refused.reply
    assert after.outcome == "sent"
    assert smtp_server.handler.to("gone@example.org") == []
    assert len(smtp_server.handler.to("ada@example.org")) == 1


def test_451_is_transient_then_accepted(smtp_server: SmtpServer) -> None:
    smtp_server.handler.transient["grey@example.org"] = 1
    with SmtpSender(settings(smtp_server)) as sender:
        first = send(sender, FROM, "grey@example.org", message("grey@example.org"))
        second = send(sender, FROM, "grey@example.org", message("grey@example.org"))
    assert (first.outcome, first.code) == ("transient", 451)
    assert second.outcome == "sent"
    assert len(smtp_server.handler.to("grey@example.org")) == 1


def test_one_connection_carries_many_messages() -> None:
    handler = SessionHandler()
    with serve(handler) as server, SmtpSender(settings(server)) as sender:
        for i in range(25):
            assert send(
                sender, FROM, f"r{i}@example.org", message(f"r{i}@example.org")
            ).outcome == ("sent")
        assert sender.connections == 1
    assert len(handler.messages) == 25
    assert len(set(handler.peers)) == 1


def test_server_closing_between_messages_reconnects_and_delivers_once() -> None:
    handler = SessionHandler()
    with serve(handler) as server, SmtpSender(settings(server)) as sender:
        assert send(sender, FROM, "a@example.org", message("a@example.org")).outcome == "sent"
        closed = threading.Event()

        def close() -> None:
            transport = handler.servers[-1].transport
            assert transport is not None
            transport.close()
            closed.set()

        server.controller.loop.call_soon_threadsafe(close)
        assert closed.wait(5)
        asyncio.run_coroutine_threadsafe(asyncio.sleep(0.05), server.controller.loop).result(5)
        result = send(sender, FROM, "b@example.org", message("b@example.org"))
        assert result.outcome == "sent"
        assert sender.connections == 2
    assert len(handler.to("a@example.org")) == 1
    assert len(handler.to("b@example.org")) == 1
    assert len(set(handler.peers)) == 2


def test_421_closes_reconnects_and_retries_once() -> None:
    handler = SessionHandler(closing={"c@example.org": 1})
    with serve(handler) as server, SmtpSender(settings(server)) as sender:
        result = send(sender, FROM, "c@example.org", message("c@example.org"))
        assert result.outcome == "sent"
        assert sender.connections == 2
    assert len(handler.to("c@example.org")) == 1


def test_421_twice_gives_up_with_a_connect_error() -> None:
    handler = SessionHandler(closing={"c@example.org": 5})
    with (
        serve(handler) as server,
        SmtpSender(settings(server)) as sender,
        pytest.raises(SmtpConnectError, match=rf"127\.0\.0\.1:{server.port}.*421"),
    ):
        send(sender, FROM, "c@example.org", message("c@example.org"))
    assert handler.to("c@example.org") == []


def test_nothing_listening_is_a_connect_error_naming_host_and_port() -> None:
    port = free_port()
    sender = SmtpSender(settings(port, timeout=3))
    with pytest.raises(
        SmtpConnectError, match=rf"cannot connect to SMTP server 127\.0\.0\.1:{port}"
    ):
        send(sender, FROM, "a@example.org", message("a@example.org"))
    with pytest.raises(SmtpConnectError, match=rf"127\.0\.0\.1:{port}"):
        check_smtp(settings(port, timeout=3))


def test_server_gone_after_first_message_is_a_connect_error() -> None:
    port = free_port()
    controller = Controller(RecordingHandler(), hostname="127.0.0.1", port=port)
    controller.start()
    sender = SmtpSender(settings(port))
    try:
        assert send(sender, FROM, "a@example.org", message("a@example.org")).outcome == "sent"
    finally:
        controller.stop()
    with pytest.raises(
        SmtpConnectError, match=rf"cannot connect to SMTP server 127\.0\.0\.1:{port}"
    ):
        send(sender, FROM, "b@example.org", message("b@example.org"))
    sender.close()


# -- TLS --------------------------------------------------------------------------------------


def test_starttls_with_an_untrusted_certificate_is_refused(tls: Tls) -> None:
    with serve(RecordingHandler(), tls_context=tls.server_context, require_starttls=True) as server:
        sender = SmtpSender(settings(server, security="starttls"))
        with pytest.raises(SmtpConnectError, match="certificate was not trusted") as caught:
            send(sender, FROM, "a@example.org", message("a@example.org"))
        assert caught.value.hint is not None and "smtp.ca_file" in caught.value.hint
        assert f"127.0.0.1:{server.port}" in str(caught.value)
        assert server.handler.messages == []


def test_starttls_with_the_ca_file_is_accepted(tls: Tls) -> None:
    handler = RecordingHandler()
    with serve(handler, tls_context=tls.server_context, require_starttls=True) as server:
        with SmtpSender(settings(server, security="starttls", ca_file=tls.ca_file)) as sender:
            assert send(sender, FROM, "a@example.org", message("a@example.org")).outcome == "sent"
        check_smtp(settings(server, security="starttls", ca_file=tls.ca_file))
    assert len(handler.messages) == 1


def test_certificate_for_another_name_is_refused(tmp_path: Path) -> None:
    ca = trustme.CA()
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("mail.example.net").configure_cert(context)
    ca_file = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    with (
        serve(RecordingHandler(), tls_context=context) as server,
        pytest.raises(SmtpConnectError, match="not trusted"),
    ):
        check_smtp(settings(server, security="starttls", ca_file=ca_file))


def test_starttls_required_but_not_offered(smtp_server: SmtpServer) -> None:
    with pytest.raises(
        SmtpConnectError, match=rf"127\.0\.0\.1:{smtp_server.port} does not offer STARTTLS"
    ):
        send(
            SmtpSender(settings(smtp_server, security="starttls")),
            FROM,
            "a@example.org",
            message("a@example.org"),
        )
    assert smtp_server.handler.messages == []


def test_implicit_tls_untrusted_then_trusted(tls: Tls) -> None:
    handler = RecordingHandler()
    with serve(handler, ssl_context=tls.server_context) as server:
        with pytest.raises(SmtpConnectError, match="certificate was not trusted"):
            check_smtp(settings(server, security="ssl"))
        with SmtpSender(settings(server, security="ssl", ca_file=tls.ca_file)) as sender:
            assert send(sender, FROM, "a@example.org", message("a@example.org")).outcome == "sent"
    assert len(handler.messages) == 1


# -- AUTH -------------------------------------------------------------------------------------


@contextmanager
def auth_server(tls: Tls, **kwargs: Any) -> Iterator[SmtpServer]:
    with serve(
        RecordingHandler(),
        tls_context=tls.server_context,
        authenticator=authenticator,
        auth_require_tls=True,
        **kwargs,
    ) as server:
        yield server


def test_auth_after_starttls(tls: Tls) -> None:
    with auth_server(tls) as server:
        smtp = settings(
            server, security="starttls", ca_file=tls.ca_file, username="mailer", password=PASSWORD
        )
        check_smtp(smtp)
        with SmtpSender(smtp) as sender:
            assert send(sender, FROM, "a@example.org", message("a@example.org")).outcome == "sent"
        assert len(server.handler.messages) == 1


def test_wrong_password_is_an_auth_error_without_the_password(
    tls: Tls, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    wrong = "Wr0ng-" + PASSWORD
    with auth_server(tls) as server:
        smtp = settings(
            server, security="starttls", ca_file=tls.ca_file, username="mailer", password=wrong
        )
        with pytest.raises(SmtpAuthError) as caught:
            send(SmtpSender(smtp), FROM, "a@example.org", message("a@example.org"))
        with pytest.raises(SmtpAuthError):
            check_smtp(smtp)
        assert server.handler.messages == []
    error = caught.value
    assert f"127.0.0.1:{server.port}" in str(error) and "'mailer'" in str(error)
    shown = " ".join([str(error), repr(error), str(error.hint), repr(error.__cause__), caplog.text])
    for secret in (wrong, PASSWORD):
        assert secret not in shown


def test_password_is_never_sent_over_plain_smtp_to_another_host() -> None:
    with pytest.raises(ConfigError, match=r"smtp\.security.*without TLS"):
        SmtpSender(
            SmtpSettings(host="mail.example.com", security="none", username="u", password=PASSWORD)
        )


def test_plain_auth_is_allowed_to_a_loopback_relay() -> None:
    handler = RecordingHandler()
    with serve(handler, authenticator=authenticator, auth_require_tls=False) as server:
        smtp = settings(server, username="mailer", password=PASSWORD)
        with SmtpSender(smtp) as sender:
            assert send(sender, FROM, "a@example.org", message("a@example.org")).outcome == "sent"
    assert len(handler.messages) == 1


# -- rate limit -------------------------------------------------------------------------------


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)


def test_rate_limiter_spaces_slots() -> None:
    clock = FakeClock()
    limiter = RateLimiter(5, clock=clock, sleep=clock.sleep)
    waits = [limiter.reserve() for _ in range(5)]
    assert waits == pytest.approx([0.0, 0.2, 0.4, 0.6, 0.8])
    clock.now += 10  # idle time is not saved up into a burst
    assert limiter.reserve() == 0.0
    assert limiter.reserve() == pytest.approx(0.2)


def test_a_long_wait_for_a_slot_says_until_when(caplog: pytest.LogCaptureFixture) -> None:
    clock = FakeClock()
    limiter = RateLimiter(0.25, clock=clock, sleep=clock.sleep)  # one slot every 4 s
    with caplog.at_level(logging.WARNING, logger="digest.smtp.rate_limit"):
        limiter.acquire()  # the first slot is now
        assert caplog.messages == []
        limiter.acquire()
    assert clock.slept == pytest.approx([4.0])
    (message,) = caplog.messages
    assert message.startswith("waiting until ") and "smtp.rate_limit: 0.25 a second" in message


def test_unlimited_rate_never_waits() -> None:
    clock = FakeClock()
    limiter = RateLimiter(0, clock=clock, sleep=clock.sleep)
    for _ in range(100):
        limiter.acquire()
    assert clock.slept == []


def test_rate_limiter_is_shared_safely_between_threads() -> None:
    clock = FakeClock()
    limiter = RateLimiter(10, clock=clock, sleep=clock.sleep)
    waits: list[float] = []
    lock = threading.Lock()

    def worker() -> None:
        for _ in range(25):
            wait = limiter.reserve()
            with lock:
                waits.append(wait)

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(round(w * 10) for w in waits) == list(range(200))


def test_sender_waits_for_the_limiter(smtp_server: SmtpServer) -> None:
    clock = FakeClock()
    limiter = RateLimiter(2, clock=clock, sleep=clock.sleep)
    with SmtpSender(settings(smtp_server), limiter=limiter) as sender:
        for i in range(4):
            send(sender, FROM, f"r{i}@example.org", message(f"r{i}@example.org"))
    assert clock.slept == pytest.approx([0.5, 1.0, 1.5])
    assert len(smtp_server.handler.messages) == 4


# -- the two command paths: pipelined (RFC 2920) and one command at a time ---------------------


@pytest.mark.parametrize("pipelining", [True, False])
def test_outcomes_with_and_without_pipelining(pipelining: bool) -> None:
    handler = RecordingHandler(pipelining=pipelining)
    handler.permanent["gone@example.org"] = "550 5.1.1 No such user"
    handler.transient["grey@example.org"] = 1
    with serve(handler) as server, SmtpSender(settings(server)) as sender:
        sender.connect()
        assert sender._conn is not None
        assert sender._conn.has_extn("pipelining") is pipelining
        results = [
            send(sender, FROM, to, message(to))
            for to in ("ada@example.org", "gone@example.org", "grey@example.org")
        ]
        again = send(sender, FROM, "grey@example.org", message("grey@example.org"))
        assert sender.connections == 1
    assert [(r.outcome, r.code) for r in results] == [
        ("sent", 250),
        ("permanent", 550),
        ("transient", 451),
    ]
    assert again.outcome == "sent"
    assert [m.rcpt_tos for m in handler.messages] == [["ada@example.org"], ["grey@example.org"]]


def test_leading_dots_survive_and_bare_line_ends_become_crlf(smtp_server: SmtpServer) -> None:
    crlf = b"Subject: dots\r\n\r\n.first line\r\n..two dots\r\nend\r\n"
    bare = b"Subject: bare\n\n.first line\nend\n"
    with SmtpSender(settings(smtp_server)) as sender:
        assert send(sender, FROM, "ada@example.org", crlf).outcome == "sent"
        assert send(sender, FROM, "bob@example.org", bare).outcome == "sent"
    [got] = smtp_server.handler.to("ada@example.org")
    assert got.data.replace(b"\r\n", b"\n") == crlf.replace(b"\r\n", b"\n")
    [got_bare] = smtp_server.handler.to("bob@example.org")
    assert got_bare.data == bare.replace(b"\n", b"\r\n")  # bare LF never goes on the wire


def test_helo_name_is_the_fqdn_or_else_the_from_domain(monkeypatch: pytest.MonkeyPatch) -> None:
    import digest.smtp.client

    digest.smtp.client._fqdn.cache_clear()
    monkeypatch.setattr(digest.smtp.client.socket, "getfqdn", lambda: "mx1.example.net")
    assert helo_name("news@example.com") == "mx1.example.net"
    digest.smtp.client._fqdn.cache_clear()
    monkeypatch.setattr(digest.smtp.client.socket, "getfqdn", lambda: "web1")
    assert helo_name("news@Exämple.com") == "xn--exmple-cua.com"
    digest.smtp.client._fqdn.cache_clear()
