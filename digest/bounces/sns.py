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
from collections import OrderedDict, deque
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

# AWS: "verify that the certificate was sent by Amazon SNS": https, and an SNS host of a region
# (sns.us-east-1.amazonaws.com, sns.cn-north-1.amazonaws.com.cn); the certificate's path is
# SimpleNotificationService-<32 hex>.pem, as every SNS message names it.
SNS_HOST = re.compile(r"^sns\.[a-z]{2}(-[a-z]+)+-\d{1,2}\.amazonaws\.com(\.cn)?$")
CERT_PATH = re.compile(r"^/SimpleNotificationService-[0-9a-f]{32}\.pem$")
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
MAX_CERTS = 64  # certificates kept (AWS rotates one a year per region)
FAILURE_MEMORY = timedelta(minutes=2)  # a URL that failed is not fetched again for this long
SIGNATURE_BYTES = (128, 256, 384, 512)  # RSA keys of 1,024 to 4,096 bits
FETCHES_PER_MINUTE = 10  # certificate fetches at most; more calls are answered 503 (SNS retries)


@dataclass(frozen=True)
class SnsMessage:
    """A verified SNS message."""

    type: str
    message_id: str
    topic_arn: str
    message: str
    subscribe_url: str | None


def check_amazon_url(url: str, what: str) -> None:
    """Refuse any URL but https on an SNS host of amazonaws.com (port 443, no user)."""
    refused = WebhookRefusedError(
        f"SNS {what} {url[:200]!r} is not https on an SNS amazonaws.com host"
    )
    try:
        parts = urlsplit(url)
        port = parts.port  # ValueError for a port out of range (99999) or not a number
    except ValueError:
        raise refused from None
    host = (parts.hostname or "").lower()
    if parts.scheme != "https" or not SNS_HOST.match(host) or port not in (None, 443):
        raise refused
    if parts.username is not None or parts.password is not None or len(url) > 1024:
        raise refused


def check_cert_url(url: str) -> None:
    """A SigningCertURL must be https on an SNS host and name a .pem as AWS names them."""
    check_amazon_url(url, "SigningCertURL")
    parts = urlsplit(url)
    if not CERT_PATH.match(parts.path) or parts.query or parts.fragment:
        raise WebhookRefusedError(
            f"SNS SigningCertURL {url[:200]!r} does not name an SNS signing certificate"
        )


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
    """Checks SNS signatures; signing certificates are fetched once per URL and kept (the 64
    most recently used), a URL that failed is not fetched again for 10 minutes, and at most
    FETCHES_PER_MINUTE fetches happen in any minute."""

    topic_arns: frozenset[str]
    fetcher: HttpsFetcher = field(default_factory=HttpsFetcher)
    max_age: timedelta = timedelta(hours=1)
    _keys: OrderedDict[str, rsa.RSAPublicKey] = field(default_factory=OrderedDict, repr=False)
    _failed: dict[str, tuple[datetime, WebhookRefusedError]] = field(
        default_factory=dict, repr=False
    )
    _fetched_at: deque[datetime] = field(default_factory=deque, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def verify(self, body: bytes, *, now: datetime) -> SnsMessage:
        """The message, once its shape, topic, age, certificate URL and signature check out.

        Everything that needs no network is checked first: only a well-formed, fresh message
        of a configured topic with a signature and an SNS certificate URL can make us fetch.
        """
        try:
            data = json.loads(body)
        except (ValueError, UnicodeDecodeError, RecursionError):
            raise WebhookRefusedError("SNS body is not JSON", status=400) from None
        if not isinstance(data, dict) or not isinstance(data.get("Type"), str):
            raise WebhookRefusedError("not an SNS message", status=400)
        kind = data["Type"]
        if kind not in SIGNED_FIELDS:
            raise WebhookRefusedError(
                f"SNS message type {kind[:40]!r} is not one we take", status=400
            )
        if not all(isinstance(data.get(k), str) for k in SIGNED_FIELDS[kind] if k != "Subject"):
            raise WebhookRefusedError(f"not an SNS {kind} message", status=400)
        if data["TopicArn"] not in self.topic_arns:
            raise WebhookRefusedError(f"SNS topic {data['TopicArn'][:200]} is not configured")
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
            raise WebhookRefusedError(f"SNS Timestamp {timestamp[:40]!r} is not a time") from None
        if sent.tzinfo is None:
            sent = sent.replace(tzinfo=UTC)
        if abs(now - sent) > self.max_age:
            raise WebhookRefusedError(f"SNS message of {timestamp} is stale (replayed?)")

    def _check_signature(self, data: dict[str, Any], kind: str, now: datetime) -> None:
        version = str(data.get("SignatureVersion", ""))
        if version not in HASHES:
            raise WebhookRefusedError(f"SNS SignatureVersion {version[:20]!r} is not 1 or 2")
        url = data.get("SigningCertURL") or data.get("SigningCertUrl")
        if not isinstance(url, str):
            raise WebhookRefusedError("SNS message without SigningCertURL")
        check_cert_url(url)
        if not data.get("Signature"):
            raise WebhookRefusedError("SNS message is not signed", status=401)
        try:
            signature = base64.b64decode(str(data["Signature"]), validate=True)
        except binascii.Error:
            raise WebhookRefusedError("SNS Signature is not base64") from None
        if len(signature) not in SIGNATURE_BYTES:
            raise WebhookRefusedError("SNS Signature is not an RSA signature's length")
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
        """The key of a certificate URL: kept, known to fail, or fetched (within the limit)."""
        with self._lock:
            key = self._keys.get(url)
            if key is not None:
                self._keys.move_to_end(url)
                return key
            failed = self._failed.get(url)
            if failed is not None and now - failed[0] < FAILURE_MEMORY:
                raise failed[1]
            while self._fetched_at and now - self._fetched_at[0] >= timedelta(minutes=1):
                self._fetched_at.popleft()
            if len(self._fetched_at) >= FETCHES_PER_MINUTE:
                raise WebhookRefusedError(
                    f"more than {FETCHES_PER_MINUTE} SNS certificate fetches in a minute; "
                    "try again later",
                    status=503,
                )
            self._fetched_at.append(now)
        try:
            public = self._fetch_key(url, now)
        except WebhookRefusedError as refused:
            with self._lock:
                if len(self._failed) >= MAX_CERTS:
                    self._failed.pop(next(iter(self._failed)))
                self._failed[url] = (now, refused)
            raise
        with self._lock:
            self._keys[url] = public
            while len(self._keys) > MAX_CERTS:
                self._keys.popitem(last=False)  # the least recently used
        return public

    def _fetch_key(self, url: str, now: datetime) -> rsa.RSAPublicKey:
        try:
            cert = x509.load_pem_x509_certificate(self.fetcher.get(url))
        except ValueError:
            raise WebhookRefusedError(f"{url} is not a PEM certificate", status=502) from None
        if not cert.not_valid_before_utc <= now <= cert.not_valid_after_utc:
            raise WebhookRefusedError(f"SNS signing certificate {url} is expired")
        public = cert.public_key()
        if not isinstance(public, rsa.RSAPublicKey):
            raise WebhookRefusedError(f"SNS signing certificate {url} has no RSA key")
        return public
