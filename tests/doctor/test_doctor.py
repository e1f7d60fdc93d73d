"""`digest doctor` against a DNS server on loopback, a local relay and a local web side."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from digest.cli import cli
from digest.demo import free_port
from digest.mail.dkim import load_dkim_signer
from tests.conftest import SmtpServer
from tests.helpers.dns_server import Records, dns_server
from tests.helpers.http_site import LiveSite, live_site


def write_key(path: Path, bits: int = 2048) -> Path:
    key = rsa.generate_private_key(public_exponent=65537, key_size=bits)
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return path


@pytest.fixture
def web() -> Iterator[LiveSite]:
    with live_site() as site:
        yield site


def write_config(tmp_path: Path, smtp_port: int, web: LiveSite) -> Path:
    key = write_key(tmp_path / "dkim.pem")
    path = tmp_path / "config.yaml"
    (tmp_path / "_posts").mkdir()
    path.write_text(
        f"""
site: {{title: Test Blog, url: https://blog.example.com}}
email:
  from: "Test Blog <news@example.com>"
  dkim: {{domain: example.com, selector: s1, private_key_file: {key}}}
database: {{url: "sqlite:///{tmp_path / "digest.db"}"}}
smtp: {{host: 127.0.0.1, port: {smtp_port}, security: none, timeout: 5}}
web: {{base_url: "{web.url}", secret: test-secret-0123456789abcdef}}
digests: {{weekly: {{}}}}
""",
        encoding="utf-8",
    )
    return path


def right_records(config: Path) -> Records:
    signer = load_dkim_signer("example.com", "s1", config.parent / "dkim.pem")
    return {
        ("example.com", "TXT"): ["v=spf1 ip4:192.0.2.10 include:_spf.example.net ~all"],
        ("_dmarc.example.com", "TXT"): ["v=DMARC1; p=quarantine; rua=mailto:d@example.com"],
        ("s1._domainkey.example.com", "TXT"): [signer.dns_record],
    }


def doctor(config: Path, nameserver: str) -> tuple[int, dict[str, dict[str, str]]]:
    result = CliRunner().invoke(
        cli, ["--config", str(config), "doctor", "--nameserver", nameserver, "--format", "json"]
    )
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    return result.exit_code, {row["check"]: row for row in json.loads(result.stdout)}


def statuses(checks: dict[str, dict[str, str]]) -> dict[str, str]:
    return {name: row["status"] for name, row in checks.items()}


def test_a_right_setup_passes(tmp_path: Path, smtp_server: SmtpServer, web: LiveSite) -> None:
    config = write_config(tmp_path, smtp_server.port, web)
    with dns_server(right_records(config)) as nameserver:
        code, checks = doctor(config, nameserver)
    assert statuses(checks) == {
        "config": "pass",
        "database": "pass",
        "smtp connect": "pass",
        "smtp TLS": "pass",  # a relay on this machine
        "smtp AUTH": "pass",
        "one-click unsubscribe": "warn",  # answers without a redirect, but over plain HTTP
        "DKIM": "pass",
        "SPF": "pass",
        "DMARC": "pass",
        "alignment": "pass",
        "PTR": "pass",
        "List-Unsubscribe": "warn",
        "Feedback-ID": "warn",
    }
    assert code == 0
    assert checks["DMARC"]["detail"] == "_dmarc.example.com: p=quarantine"
    assert "POST /unsubscribe/doctor-check" in web.hits
    assert smtp_server.handler.messages == []  # the doctor sends nothing


def test_wrong_records_fail_with_the_fix(
    tmp_path: Path, smtp_server: SmtpServer, web: LiveSite
) -> None:
    config = write_config(tmp_path, smtp_server.port, web)
    other = load_dkim_signer("example.com", "s1", write_key(tmp_path / "other.pem"))
    records = {
        ("example.com", "TXT"): ["v=spf1 +all", "google-site-verification=abc"],
        ("s1._domainkey.example.com", "TXT"): [other.dns_record],
    }  # and no DMARC record at all
    web.statuses["/unsubscribe/doctor-check"] = 302
    with dns_server(records) as nameserver:
        code, checks = doctor(config, nameserver)
    assert code == 1
    got = statuses(checks)
    assert (got["DKIM"], got["SPF"], got["DMARC"], got["one-click unsubscribe"]) == (
        "fail",
        "fail",
        "fail",
        "fail",
    )
    assert checks["DKIM"]["detail"] == (
        "the key at s1._domainkey.example.com is not the one in email.dkim.private_key_file"
    )
    right = load_dkim_signer("example.com", "s1", config.parent / "dkim.pem").dns_record
    assert checks["DKIM"]["fix"] == f'publish TXT s1._domainkey.example.com "{right}"'
    assert checks["SPF"]["detail"] == "example.com: v=spf1 +all lets anyone send"
    assert checks["DMARC"]["fix"].startswith('publish TXT _dmarc.example.com "v=DMARC1; p=none')
    assert "(a redirect)" in checks["one-click unsubscribe"]["detail"]


def test_a_relay_that_does_not_answer_fails_and_the_table_says_how_to_fix_it(
    tmp_path: Path, web: LiveSite
) -> None:
    config = write_config(tmp_path, free_port(), web)
    with dns_server(right_records(config)) as nameserver:
        result = CliRunner().invoke(
            cli, ["--config", str(config), "doctor", "--nameserver", nameserver]
        )
    assert result.exit_code == 1
    lines = result.stdout.splitlines()
    connect = next(i for i, line in enumerate(lines) if line.startswith("fail  smtp connect"))
    assert "127.0.0.1" in lines[connect]
    assert lines[connect + 1].strip() == "fix: check smtp.host, smtp.port and the firewall"
    assert lines[-1].startswith("11 checks: 1 fail")  # no TLS or AUTH line without a connection


def test_every_relay_is_checked_and_a_dead_fallback_fails(
    tmp_path: Path, smtp_server: SmtpServer, web: LiveSite
) -> None:
    config = write_config(tmp_path, smtp_server.port, web)
    text = config.read_text(encoding="utf-8")
    relays = (
        f"smtp:\n"
        f"  - {{name: main, host: 127.0.0.1, port: {smtp_server.port}, security: none}}\n"
        f"  - {{name: backup, host: 127.0.0.1, port: {free_port()}, security: none, timeout: 2}}\n"
    )
    lines = [line for line in text.splitlines(keepends=True) if not line.startswith("smtp:")]
    config.write_text("".join(lines) + relays, encoding="utf-8")
    with dns_server(right_records(config)) as nameserver:
        code, checks = doctor(config, nameserver)
    got = statuses(checks)
    assert code == 1
    assert (got["smtp main connect"], got["smtp main TLS"], got["smtp main AUTH"]) == ("pass",) * 3
    assert got["smtp backup connect"] == "fail"
    assert "smtp backup TLS" not in got and "smtp connect" not in got
    assert "127.0.0.1" in checks["smtp backup connect"]["detail"]
