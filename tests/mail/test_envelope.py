"""The envelope of each outgoing message: VERP MAIL FROM and the DKIM signature, from the config."""

from __future__ import annotations

from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from digest.config import load_settings
from digest.errors import ConfigError
from digest.mail.envelope import Envelope
from digest.mail.verp import DeliveryRef, code_in_address, read_verp_code
from digest.settings import Settings

SECRET = "envelope-secret-0123456789"


def settings_with(folder: Path, email_extra: str = "", secret: str = SECRET) -> Settings:
    (folder / "_posts").mkdir(exist_ok=True)
    (folder / "config.yaml").write_text(
        "site: {title: Example Blog, url: 'https://blog.example.com'}\n"
        "email:\n"
        '  from: "Example Blog <news@example.com>"\n'
        f"{email_extra}"
        f"web: {{secret: '{secret}'}}\n",
        encoding="utf-8",
    )
    return load_settings(folder / "config.yaml", environ={})


def test_without_bounce_address_mail_from_is_the_from_address(tmp_path: Path) -> None:
    envelope = Envelope(settings_with(tmp_path))
    assert envelope.mail_from(3, 42) == "news@example.com"
    assert envelope.sign(b"x") == b"x"


def test_with_bounce_address_each_delivery_gets_its_code(tmp_path: Path) -> None:
    envelope = Envelope(settings_with(tmp_path, "  bounce_address: bounces@example.com\n"))
    address = envelope.mail_from(3, 42)
    code = code_in_address("bounces@example.com", address)
    assert code is not None and read_verp_code(SECRET, code) == DeliveryRef(3, 42)
    assert envelope.mail_from(3, 43) != address
    assert envelope.mail_from() == "bounces@example.com"  # send-test: no delivery


def test_verp_without_a_secret_is_a_config_error(tmp_path: Path) -> None:
    settings = settings_with(tmp_path, "  bounce_address: bounces@example.com\n", secret="")
    with pytest.raises(ConfigError, match=r"web\.secret is empty"):
        Envelope(settings)


def test_dkim_key_is_loaded_from_the_config(tmp_path: Path) -> None:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    (tmp_path / "dkim.pem").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    extra = "  dkim: {domain: example.com, selector: news, private_key_file: dkim.pem}\n"
    envelope = Envelope(settings_with(tmp_path, extra))
    assert envelope.signer is not None and envelope.signer.dns_name == "news._domainkey.example.com"
    message = b"From: a@example.com\r\nTo: b@example.org\r\nSubject: s\r\n\r\nbody\r\n"
    assert envelope.sign(message).startswith(b"DKIM-Signature: v=1; a=rsa-sha256;")
