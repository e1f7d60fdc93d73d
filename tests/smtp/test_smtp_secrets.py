"""SMTP replies quoted in errors never give credentials away; echoed values stay on one line."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session
from click.testing import CliRunner

from digest.cli import cli
from digest.demo import free_port
from digest.smtp.replies import reply_text
from tests.conftest import RecordingHandler, SmtpServer
from tests.helpers.site_fixtures import AS_OF, make_site

PASSWORD = "TopSecretPw-42"
PLAIN = base64.b64encode(f"\0digest\0{PASSWORD}".encode()).decode()


class EchoingHandler(RecordingHandler):
    """A relay that refuses every AUTH and quotes what it was sent, in the way given."""

    echo: str = "command"

    async def handle_AUTH(
        self, server: SMTP, session: Session, envelope: Envelope, args: list[str]
    ) -> str:
        if self.echo == "command":
            return f"535 5.7.8 Authentication failed: AUTH {' '.join(args)}"
        if self.echo == "payload":
            return f"535 5.7.8 Bad credentials {args[1] if len(args) > 1 else ''}"
        decoded = base64.b64decode(args[1]).decode() if len(args) > 1 else ""
        return f"535 5.7.8 Bad password {decoded.split(chr(0))[-1]}"


@pytest.fixture
def echoing_server() -> Iterator[SmtpServer]:
    handler = EchoingHandler()
    port = free_port()
    controller = Controller(
        handler,
        hostname="127.0.0.1",
        port=port,
        decode_data=False,
        auth_require_tls=False,
        auth_exclude_mechanism=["LOGIN"],  # PLAIN only: its payload holds the password
    )
    controller.start()
    try:
        yield SmtpServer("127.0.0.1", port, handler, controller)
    finally:
        controller.stop()


def _send_test(tmp_path: Path, smtp: dict[str, Any]) -> Any:
    site = make_site(tmp_path / "site", f"sqlite:///{tmp_path / 'd.db'}", 25, extra={"smtp": smtp})
    site.add_post("Hello")
    args = ["--config", str(site.config_path), "send-test", "weekly", "--to", "me@example.com"]
    return CliRunner().invoke(cli, [*args, "--as-of", AS_OF.isoformat()])


@pytest.mark.parametrize("echo", ["command", "payload", "password"])
def test_a_relay_echoing_the_auth_exchange_shows_no_credentials(
    tmp_path: Path, echoing_server: SmtpServer, echo: str
) -> None:
    assert isinstance(echoing_server.handler, EchoingHandler)
    echoing_server.handler.echo = echo
    smtp = {"port": echoing_server.port, "username": "digest", "password": PASSWORD}
    result = _send_test(tmp_path, smtp)
    assert result.exit_code == 1, result.output
    assert result.output.startswith(
        f"error: SMTP login refused for user 'digest' at 127.0.0.1:{echoing_server.port}: 535 "
    )
    assert "[redacted]" in result.output
    for secret in (
        PASSWORD,
        PLAIN,
        PLAIN.rstrip("="),
        base64.b64encode(PASSWORD.encode()).decode(),
    ):
        assert secret not in result.output


def test_control_characters_in_smtp_host_are_escaped(tmp_path: Path) -> None:
    result = _send_test(tmp_path, {"host": "127.0.0.1\r\nerror: all fine", "port": free_port()})
    assert result.exit_code == 1, result.output
    first, *rest = result.output.splitlines()
    assert first.startswith("error: cannot connect to SMTP server 127.0.0.1\\r\\nerror: all fine:")
    assert not any(line.startswith("error:") for line in rest)
    assert "\r" not in result.output


def test_a_reply_is_one_line_with_auth_payloads_redacted() -> None:
    reply = b"535-5.7.8 Bad\n535 5.7.8 auth xoauth2 dXNlcj1tZQFhdXRoPUJlYXJlcg== \x1b[2J"
    assert reply_text(reply) == "535-5.7.8 Bad 535 5.7.8 auth xoauth2 [redacted] \\x1b[2J"
