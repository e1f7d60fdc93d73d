"""DKIM signing (email.dkim) for those who send through their own MTA: RSA 2048 or Ed25519 keys.

message ─► dkim_signing ─► smtp; the key is read once; the one-click headers Gmail needs are signed.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass, field
from pathlib import Path

import dkim
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa

from digest.errors import ConfigError

# RFC 6376 §5.4: From is required; Gmail honours one-click unsubscribe only when the signature
# covers List-Unsubscribe and List-Unsubscribe-Post (support.google.com/a/answer/81126).
SIGNED_HEADERS = (
    "From",
    "To",
    "Subject",
    "Date",
    "Message-ID",
    "List-Id",
    "List-Unsubscribe",
    "List-Unsubscribe-Post",
    "Reply-To",
    "Feedback-ID",
    "MIME-Version",
    "Content-Type",
)
MIN_RSA_BITS = 2048
RSA = b"rsa-sha256"
ED25519 = b"ed25519-sha256"
_PROBE = (
    b"From: probe@example.com\r\nTo: probe@example.com\r\nSubject: probe\r\n"
    b"Date: Sun, 29 Nov 2026 10:00:00 +0000\r\nMessage-ID: <probe@example.com>\r\n\r\nprobe\r\n"
)


@dataclass(frozen=True)
class DkimSigner:
    """A DKIM key read once; sign() prepends a DKIM-Signature to a CRLF message."""

    domain: str
    selector: str
    algorithm: bytes  # rsa-sha256 | ed25519-sha256
    # In the form dkimpy takes: PKCS#1 PEM, or base64 of the Ed25519 seed; never in a repr.
    private_key: bytes = field(repr=False)
    public_key: bytes = b""  # base64, as the DNS record's p= carries it

    def sign(self, data: bytes) -> bytes:
        """The message with its DKIM-Signature header first."""
        header: bytes = dkim.sign(
            data,
            self.selector.encode("ascii"),
            self.domain.encode("ascii"),
            self.private_key,
            signature_algorithm=self.algorithm,
            include_headers=[h.encode("ascii") for h in SIGNED_HEADERS],
            linesep=b"\r\n",
        )
        return header + data

    @property
    def dns_name(self) -> str:
        return f"{self.selector}._domainkey.{self.domain}"

    @property
    def dns_record(self) -> str:
        """The TXT record to publish at dns_name."""
        kind = "rsa" if self.algorithm == RSA else "ed25519"
        return f"v=DKIM1; k={kind}; p={self.public_key.decode('ascii')}"


def load_dkim_signer(domain: str, selector: str, key_file: Path) -> DkimSigner:
    """Read and check the private key (PEM RSA or Ed25519, or dknewkey's Ed25519 base64)."""
    where = f"email.dkim.private_key_file: {key_file}"
    try:
        text = key_file.read_bytes()
    except OSError as exc:
        raise ConfigError(f"{where}: cannot read the key: {exc.strerror or exc}") from exc
    signer = _signer(domain, selector, text, where)
    try:
        signer.sign(_PROBE)
    except dkim.DKIMException as exc:
        raise ConfigError(f"{where}: the key cannot sign: {exc}") from exc
    return signer


def _signer(domain: str, selector: str, text: bytes, where: str) -> DkimSigner:
    if b"-----BEGIN" not in text:
        return _raw_ed25519(domain, selector, text, where)
    try:
        key = serialization.load_pem_private_key(text, password=None)
    except (ValueError, TypeError) as exc:
        raise ConfigError(f"{where}: not a usable unencrypted PEM private key ({exc})") from exc
    if isinstance(key, rsa.RSAPrivateKey):
        if key.key_size < MIN_RSA_BITS:
            raise ConfigError(
                f"{where}: RSA key of {key.key_size} bits; use at least {MIN_RSA_BITS}"
            )
        private = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.TraditionalOpenSSL,
            serialization.NoEncryption(),
        )
        public = key.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        return DkimSigner(domain, selector, RSA, private, base64.b64encode(public))
    if isinstance(key, ed25519.Ed25519PrivateKey):
        return _ed25519(domain, selector, key)
    raise ConfigError(f"{where}: a {type(key).__name__}; DKIM takes an RSA or Ed25519 key")


def _raw_ed25519(domain: str, selector: str, text: bytes, where: str) -> DkimSigner:
    try:
        seed = base64.b64decode(text.strip(), validate=True)
        key = ed25519.Ed25519PrivateKey.from_private_bytes(seed)
    except (binascii.Error, ValueError) as exc:
        raise ConfigError(
            f"{where}: neither a PEM key nor a base64 Ed25519 key (as dknewkey writes)"
        ) from exc
    return _ed25519(domain, selector, key)


def _ed25519(domain: str, selector: str, key: ed25519.Ed25519PrivateKey) -> DkimSigner:
    raw = serialization.Encoding.Raw
    seed = key.private_bytes(raw, serialization.PrivateFormat.Raw, serialization.NoEncryption())
    public = key.public_key().public_bytes(raw, serialization.PublicFormat.Raw)
    return DkimSigner(domain, selector, ED25519, base64.b64encode(seed), base64.b64encode(public))
