"""DKIM: RSA 2048 and Ed25519 signatures that dkimpy verifies against a DNS record we stub."""

from __future__ import annotations

import base64
import re
from email import message_from_bytes
from pathlib import Path

import dkim
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa

from digest.errors import ConfigError
from digest.mail.dkim import DkimSigner, load_dkim_signer

MESSAGE = (
    b"From: Example Blog <news@example.com>\r\n"
    b"To: alice@example.net\r\n"
    b"Subject: Example Blog: 3 new posts\r\n"
    b"Date: Sun, 29 Nov 2026 09:00:00 +0000\r\n"
    b"Message-ID: <176432112000.4242.1@example.com>\r\n"
    b"List-Id: weekly <weekly.example.com>\r\n"
    b"List-Unsubscribe: <https://news.example.com/unsubscribe/abc.def>\r\n"
    b"List-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n"
    b"MIME-Version: 1.0\r\n"
    b"Content-Type: text/plain; charset=utf-8\r\n"
    b"\r\n"
    b"Three new posts this week.\r\n"
)
PEM = serialization.Encoding.PEM
NO_PASSWORD = serialization.NoEncryption()


def _rsa_file(folder: Path, bits: int = 2048) -> Path:
    key = rsa.generate_private_key(public_exponent=65537, key_size=bits)
    path = folder / f"rsa{bits}.pem"
    path.write_bytes(key.private_bytes(PEM, serialization.PrivateFormat.PKCS8, NO_PASSWORD))
    return path


def _ed25519_file(folder: Path) -> Path:
    key = ed25519.Ed25519PrivateKey.generate()
    path = folder / "ed25519.pem"
    path.write_bytes(key.private_bytes(PEM, serialization.PrivateFormat.PKCS8, NO_PASSWORD))
    return path


def _verify(signer: DkimSigner, signed: bytes) -> bool:
    asked: list[bytes] = []

    def dns(name: bytes, timeout: int = 5) -> bytes:
        asked.append(name)
        return signer.dns_record.encode("ascii") if name == b"news._domainkey.example.com." else b""

    result = bool(dkim.verify(signed, dnsfunc=dns))
    assert asked == [b"news._domainkey.example.com."]
    return result


def _signed_headers(signed: bytes) -> list[str]:
    """The h= tag of the DKIM-Signature: the header fields the signature covers."""
    value = re.sub(r"\s+", "", str(message_from_bytes(signed)["DKIM-Signature"]))
    tags = dict(tag.split("=", 1) for tag in value.split(";") if tag)
    return tags["h"].split(":")


@pytest.mark.parametrize("make_key", [_rsa_file, _ed25519_file], ids=["rsa2048", "ed25519"])
def test_a_signed_message_verifies_and_covers_one_click(tmp_path: Path, make_key: object) -> None:
    signer = load_dkim_signer("example.com", "news", make_key(tmp_path))  # type: ignore[operator]
    signed = signer.sign(MESSAGE)
    assert signed.startswith(b"DKIM-Signature: v=1; a=" + signer.algorithm)
    assert signed.endswith(MESSAGE)
    assert _verify(signer, signed)
    covered = _signed_headers(signed)
    for name in ("from", "to", "subject", "date", "message-id", "list-id"):
        assert name in covered
    assert "list-unsubscribe" in covered and "list-unsubscribe-post" in covered


@pytest.mark.parametrize(
    ("header", "changed"),
    [
        (b"Subject: Example Blog: 3 new posts", b"Subject: Example Blog: 4 new posts"),
        (b"List-Unsubscribe-Post: List-Unsubscribe=One-Click", b"List-Unsubscribe-Post: x"),
        (b"<https://news.example.com/unsubscribe/abc.def>", b"<https://evil.example/u>"),
        (b"Three new posts this week.", b"Three old posts this week."),
    ],
)
def test_a_changed_header_or_body_fails_verification(
    tmp_path: Path, header: bytes, changed: bytes
) -> None:
    signer = load_dkim_signer("example.com", "news", _rsa_file(tmp_path))
    signed = signer.sign(MESSAGE)
    assert _verify(signer, signed)
    assert not _verify(signer, signed.replace(header, changed))


def test_an_added_list_unsubscribe_fails_verification(tmp_path: Path) -> None:
    signer = load_dkim_signer("example.com", "news", _ed25519_file(tmp_path))
    bare = MESSAGE.replace(b"List-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n", b"")
    signed = signer.sign(bare)
    assert _verify(signer, signed)
    # The absent header was signed too: a relay cannot add one-click afterwards.
    added = signed.replace(
        b"\r\n\r\n", b"\r\nList-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n\r\n", 1
    )
    assert not _verify(signer, added)


def test_the_key_is_read_once(tmp_path: Path) -> None:
    path = _rsa_file(tmp_path)
    signer = load_dkim_signer("example.com", "news", path)
    path.unlink()
    assert _verify(signer, signer.sign(MESSAGE))


def test_a_dknewkey_ed25519_key_is_accepted(tmp_path: Path) -> None:
    key = ed25519.Ed25519PrivateKey.generate()
    seed = key.private_bytes(
        serialization.Encoding.Raw, serialization.PrivateFormat.Raw, NO_PASSWORD
    )
    path = tmp_path / "news.key"
    path.write_bytes(base64.b64encode(seed) + b"\n")
    signer = load_dkim_signer("example.com", "news", path)
    assert signer.dns_record.startswith("v=DKIM1; k=ed25519; p=")
    assert _verify(signer, signer.sign(MESSAGE))


def test_the_private_key_never_shows_in_a_repr(tmp_path: Path) -> None:
    signer = load_dkim_signer("example.com", "news", _rsa_file(tmp_path))
    assert b"PRIVATE" in signer.private_key
    assert "PRIVATE" not in repr(signer) and signer.private_key.decode() not in repr(signer)


def test_unusable_keys_are_one_clear_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"RSA key of 1024 bits; use at least 2048"):
        load_dkim_signer("example.com", "news", _rsa_file(tmp_path, 1024))
    with pytest.raises(ConfigError, match=r"missing.pem: cannot read the key"):
        load_dkim_signer("example.com", "news", tmp_path / "missing.pem")
    garbage = tmp_path / "garbage.pem"
    garbage.write_text("not a key")
    with pytest.raises(ConfigError, match=r"email.dkim.private_key_file: .*garbage.pem: neither"):
        load_dkim_signer("example.com", "news", garbage)
