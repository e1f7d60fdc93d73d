"""The name a mail goes out with in EHLO: a valid host name even when the machine's has no dot.

A real aiosmtpd server records the EHLO it received; only the machine's name lookup is patched.
"""

from __future__ import annotations

import io
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlencode
from wsgiref.util import setup_testing_defaults

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session
from click.testing import CliRunner

import digest.smtp.client
from digest.cli import cli
from digest.demo import free_port
from digest.store import open_store
from digest.web import make_app
from tests.conftest import RecordingHandler
from tests.helpers.site_fixtures import AS_OF, Site, make_site

# RFC 1123 host name with at least one dot: what a relay expects after EHLO.
HOST_NAME = re.compile(
    r"^(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
    r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)+$"
)


@dataclass
class EhloRecorder(RecordingHandler):
    """Records messages (as RecordingHandler does) and every EHLO name it was greeted with."""

    ehlo_names: list[str] = field(default_factory=list)

    async def handle_EHLO(
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        hostname: str,
        responses: list[str],
    ) -> list[str]:
        with self.lock:
            self.ehlo_names.append(hostname)
        return await super().handle_EHLO(server, session, envelope, hostname, responses)


@pytest.fixture
def recorder() -> Iterator[tuple[EhloRecorder, int]]:
    handler = EhloRecorder()
    port = free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port, decode_data=False)
    controller.start()
    try:
        yield handler, port
    finally:
        controller.stop()


@pytest.fixture
def machine_without_dot(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """This machine calls itself "web1" (no domain), as many containers and small hosts do."""
    digest.smtp.client._fqdn.cache_clear()
    monkeypatch.setattr(digest.smtp.client.socket, "getfqdn", lambda: "web1")
    yield
    digest.smtp.client._fqdn.cache_clear()


def subscribe(site: Site, email: str) -> int:
    """POST /subscribe to the WSGI app in-process, then send what it queued; the HTTP status."""
    store = open_store(site.database_url)
    try:
        app = make_app(site.settings(), store, mailer_thread=False)
        body = urlencode({"email": email}).encode()
        environ: dict[str, object] = {}
        setup_testing_defaults(environ)
        environ.update(
            REQUEST_METHOD="POST",
            PATH_INFO="/subscribe",
            CONTENT_LENGTH=str(len(body)),
            CONTENT_TYPE="application/x-www-form-urlencoded",
        )
        environ["wsgi.input"] = io.BytesIO(body)
        statuses: list[str] = []

        def start_response(status: str, headers: object, exc: object = None) -> None:
            statuses.append(status)

        b"".join(app(environ, start_response))  # type: ignore[arg-type]
        app.mailer.run_once()  # what the mailer thread of `digest serve` does within seconds
        return int(statuses[0].split()[0])
    finally:
        store.dispose()


def test_a_confirmation_mail_says_a_valid_host_name_in_ehlo(
    tmp_path: Path,
    migrated_sqlite_url: str,
    recorder: tuple[EhloRecorder, int],
    machine_without_dot: None,
) -> None:
    handler, port = recorder
    # The From header has a display name: the bug sent "EHLO example.com>".
    site = make_site(tmp_path / "site", migrated_sqlite_url, port)
    assert subscribe(site, "new@example.org") == 202
    assert [m.rcpt_tos for m in handler.messages] == [["new@example.org"]]
    assert handler.ehlo_names == ["example.com"]
    assert HOST_NAME.match(handler.ehlo_names[0])


def test_a_test_digest_says_the_same_host_name_in_ehlo(
    tmp_path: Path,
    migrated_sqlite_url: str,
    recorder: tuple[EhloRecorder, int],
    machine_without_dot: None,
) -> None:
    handler, port = recorder
    site = make_site(tmp_path / "site", migrated_sqlite_url, port)
    site.add_post("Hello")
    args = ["--config", str(site.config_path), "send-test", "weekly", "--to", "me@example.org"]
    result = CliRunner().invoke(cli, [*args, "--as-of", AS_OF.isoformat()])
    assert result.exit_code == 0, result.output
    assert [m.rcpt_tos for m in handler.messages] == [["me@example.org"]]
    assert handler.ehlo_names == ["example.com"]
