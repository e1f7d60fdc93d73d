"""Amazon SNS messages (how SES reports bounces), checked against the signing certificate.

web ─► webhooks ─► sns (verify, confirm subscriptions) ─► relays.ses_report ─► policy.
"""

from __future__ import annotations

import base64
import binascii
import http.client
import json
import re
import socket
import ssl
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from digest.errors import WebhookRefusedError

# AWS: "verify that the certificate was sent by Amazon SNS": https, and an SNS host of a region.
SNS_HOST = re.compile(r"^sns\.[a-z0-9-]+\.amazonaws\.com(\.cn)?$")
# The fields each message type signs, in this order (docs.aws.amazon.com/sns, "Verifying the
# signatures of Amazon SNS messages").
SIGNED_FIELDS = {
    "Notification": ("Message", "MessageId", "Subject", "Timestamp", "TopicArn", "Type"),
    "SubscriptionConfirmation": (
        "Message",
        "MessageId",
        "SubscribeURL",
        "Timestamp",
        "Token",
        "TopicArn",
        "Type",
    ),
}
SIGNED_FIELDS["UnsubscribeConfirmation"] = SIGNED_FIELDS["SubscriptionConfirmation"]
HASHES: dict[str, type[hashes.HashAlgorithm]] = {"1": hashes.SHA1, "2": hashes.SHA256}
MAX_CERT_BYTES = 64 * 1024
MAX_CERTS = 16


@dataclass(frozen=True)
class SnsMessage:
    """A verified SNS message."""

    type: str
    message_id: str
    topic_arn: str
    message: str
    subscribe_url: str | None


def check_amazon_url(url: str, what: str) -> None:
    """Refuse any URL but https on an SNS host of amazonaws.com."""
    parts = urlsplit(url)
    host = (parts.hostname or "").lower()
    if parts.scheme != "https" or not SNS_HOST.match(host) or parts.port not in (None, 443):
        raise WebhookRefusedError(f"SNS {what} {url!r} is not https on an SNS amazonaws.com host")


class HttpsFetcher:
    """GET over verified TLS. `connect_to` sends a host's connections elsewhere (tests only),
    like curl's --connect-to: the certificate is still checked against the URL's host."""

    def __init__(
        self,
        *,
        ca_file: Path | None = None,
        connect_to: dict[str, tuple[str, int]] | None = None,
        timeout: float = 10.0,
    ) -> None:
        self._context = ssl.create_default_context(cafile=str(ca_file) if ca_file else None)
        self._connect_to = dict(connect_to or {})
        self._timeout = timeout

    def get(self, url: str, *, limit: int = MAX_CERT_BYTES) -> bytes:
        parts = urlsplit(url)
        host = parts.hostname or ""
        address = self._connect_to.get(host, (host, parts.port or 443))
        path = parts.path + (f"?{parts.query}" if parts.query else "")
        try:
            raw = socket.create_connection(address, timeout=self._timeout)
            with self._context.wrap_socket(raw, server_hostname=host) as sock:
                # Plain HTTP over the TLS socket we made (and verified) ourselves.
                connection = http.client.HTTPConnection(host, timeout=self._timeout)
                connection.sock = sock
                connection.request("GET", path or "/", headers={"Host": host})
                response = connection.getresponse()
                body = response.read(limit + 1)
        except (OSError, http.client.HTTPException) as exc:
            raise WebhookRefusedError(f"cannot fetch {url}: {exc}", status=502) from exc
        if response.status != 200:
            raise WebhookRefusedError(f"{url} answered HTTP {response.status}", status=502)
        if len(body) > limit:
            raise WebhookRefusedError(f"{url}: answer larger than {limit} bytes", status=502)
        return body


@dataclass
class SnsVerifier:
    """Checks SNS signatures; signing certificates are fetched once per URL and kept."""

    topic_arns: frozenset[str]
    fetcher: HttpsFetcher = field(default_factory=HttpsFetcher)
    max_age: timedelta = timedelta(hours=1)
    _keys: dict[str, rsa.RSAPublicKey] = field(default_factory=dict, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def verify(self, body: bytes, *, now: datetime) -> SnsMessage:
        """The message, once its topic, age, certificate URL and signature all check out."""
        try:
            data = json.loads(body)
        except (ValueError, UnicodeDecodeError):
            raise WebhookRefusedError("SNS body is not JSON", status=400) from None
        if not isinstance(data, dict) or not all(
            isinstance(data.get(k), str) for k in ("Type", "MessageId", "TopicArn", "Timestamp")
        ):
            raise WebhookRefusedError("not an SNS message", status=400)
        kind = data["Type"]
        if kind not in SIGNED_FIELDS:
            raise WebhookRefusedError(f"SNS message type {kind!r} is not one we take", status=400)
        if data["TopicArn"] not in self.topic_arns:
            raise WebhookRefusedError(f"SNS topic {data['TopicArn']} is not configured")
        self._check_age(data["Timestamp"], now)
        self._check_signature(data, kind, now)
        return SnsMessage(
            type=kind,
            message_id=data["MessageId"],
            topic_arn=data["TopicArn"],
            message=str(data.get("Message", "")),
            subscribe_url=data.get("SubscribeURL"),
        )

    def confirm(self, message: SnsMessage) -> None:
        """Answer a SubscriptionConfirmation by visiting its SubscribeURL."""
        if not message.subscribe_url:
            raise WebhookRefusedError("SNS SubscriptionConfirmation without SubscribeURL")
        check_amazon_url(message.subscribe_url, "SubscribeURL")
        self.fetcher.get(message.subscribe_url)

    def _check_age(self, timestamp: str, now: datetime) -> None:
        try:
            sent = datetime.fromisoformat(timestamp.replace("Z", "+00:00"))
        except ValueError:
            raise WebhookRefusedError(f"SNS Timestamp {timestamp!r} is not a time") from None
        if sent.tzinfo is None:
            sent = sent.replace(tzinfo=UTC)
        if abs(now - sent) > self.max_age:
            raise WebhookRefusedError(f"SNS message of {timestamp} is stale (replayed?)")

    def _check_signature(self, data: dict[str, Any], kind: str, now: datetime) -> None:
        version = str(data.get("SignatureVersion", ""))
        if version not in HASHES:
            raise WebhookRefusedError(f"SNS SignatureVersion {version!r} is not 1 or 2")
        url = data.get("SigningCertURL") or data.get("SigningCertUrl")
        if not isinstance(url, str):
            raise WebhookRefusedError("SNS message without SigningCertURL")
        check_amazon_url(url, "SigningCertURL")
        if not data.get("Signature"):
            raise WebhookRefusedError("SNS message is not signed", status=401)
        try:
            signature = base64.b64decode(str(data["Signature"]), validate=True)
        except binascii.Error:
            raise WebhookRefusedError("SNS Signature is not base64") from None
        text = "".join(
            f"{name}\n{data[name]}\n" for name in SIGNED_FIELDS[kind] if data.get(name) is not None
        )
        try:
            self._key(url, now).verify(
                signature, text.encode("utf-8"), padding.PKCS1v15(), HASHES[version]()
            )
        except InvalidSignature:
            raise WebhookRefusedError("SNS signature does not verify") from None

    def _key(self, url: str, now: datetime) -> rsa.RSAPublicKey:
        with self._lock:
            key = self._keys.get(url)
        if key is not None:
            return key
        try:
            cert = x509.load_pem_x509_certificate(self.fetcher.get(url))
        except ValueError:
            raise WebhookRefusedError(f"{url} is not a PEM certificate", status=502) from None
        if not cert.not_valid_before_utc <= now <= cert.not_valid_after_utc:
            raise WebhookRefusedError(f"SNS signing certificate {url} is expired")
        public = cert.public_key()
        if not isinstance(public, rsa.RSAPublicKey):
            raise WebhookRefusedError(f"SNS signing certificate {url} has no RSA key")
        with self._lock:
            if len(self._keys) >= MAX_CERTS:
                self._keys.clear()
            self._keys[url] = public
        return public
