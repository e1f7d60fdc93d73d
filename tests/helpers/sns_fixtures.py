"""A stand-in for Amazon SNS in tests: a signing certificate served over HTTPS by a local server
whose TLS certificate (for sns.us-east-1.amazonaws.com) comes from a CA the test makes."""

from __future__ import annotations

import base64
import json
import ssl
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import trustme
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from digest.bounces.sns import SIGNED_FIELDS, HttpsFetcher, SnsVerifier
from digest.demo import free_port

SNS_HOST = "sns.us-east-1.amazonaws.com"
CERT_PATH = "/SimpleNotificationService-9c6465fa7f48f5cacd23014631ec1136.pem"
TOPIC = "arn:aws:sns:us-east-1:888888888888:digest-bounces"


@dataclass
class FakeSns:
    """Serves the signing certificate and SubscribeURL; signs messages like SNS does."""

    port: int
    ca_file: Path
    signing_key: rsa.RSAPrivateKey
    requests: list[str] = field(default_factory=list)

    @property
    def cert_url(self) -> str:
        return f"https://{SNS_HOST}{CERT_PATH}"

    def fetcher(self) -> HttpsFetcher:
        return HttpsFetcher(ca_file=self.ca_file, connect_to={SNS_HOST: ("127.0.0.1", self.port)})

    def verifier(self, topics: frozenset[str] = frozenset({TOPIC})) -> SnsVerifier:
        return SnsVerifier(topics, fetcher=self.fetcher())

    def message(
        self,
        kind: str,
        message: str,
        *,
        timestamp: datetime,
        topic: str = TOPIC,
        key: rsa.RSAPrivateKey | None = None,
        version: str = "1",
        cert_url: str | None = None,
    ) -> dict[str, Any]:
        """An SNS message of `kind`, signed with our key (or `key`)."""
        data: dict[str, Any] = {
            "Type": kind,
            "MessageId": str(uuid.uuid4()),
            "TopicArn": topic,
            "Message": message,
            "Timestamp": timestamp.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z",
            "SignatureVersion": version,
            "SigningCertURL": cert_url or self.cert_url,
        }
        if kind == "SubscriptionConfirmation":
            data["Token"] = uuid.uuid4().hex
            data["SubscribeURL"] = (
                f"https://{SNS_HOST}/?Action=ConfirmSubscription&TopicArn={topic}"
                f"&Token={data['Token']}"
            )
        else:
            data["Subject"] = "Amazon SES Email Event Notification"
            data["UnsubscribeURL"] = f"https://{SNS_HOST}/?Action=Unsubscribe"
        text = "".join(f"{n}\n{data[n]}\n" for n in SIGNED_FIELDS[kind] if n in data)
        algorithm = hashes.SHA1() if version == "1" else hashes.SHA256()
        signature = (key or self.signing_key).sign(text.encode(), padding.PKCS1v15(), algorithm)
        data["Signature"] = base64.b64encode(signature).decode()
        return data


@contextmanager
def running_fake_sns(folder: Path) -> Iterator[FakeSns]:
    # SNS signs with RSA (SHA1withRSA or SHA256withRSA).
    ca = trustme.CA(key_type=trustme.KeyType.RSA)
    signing = ca.issue_cert("sns.amazonaws.com", key_type=trustme.KeyType.RSA)
    key = serialization.load_pem_private_key(signing.private_key_pem.bytes(), password=None)
    assert isinstance(key, rsa.RSAPrivateKey)
    certificate = signing.cert_chain_pems[0].bytes()
    ca_file = folder / "sns-ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert(SNS_HOST).configure_cert(server_context)
    fake = FakeSns(free_port(), ca_file, key)

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            fake.requests.append(self.path)
            body = certificate if self.path == CERT_PATH else b"<ConfirmSubscriptionResponse/>"
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", fake.port), Handler)
    server.socket = server_context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield fake
    finally:
        server.shutdown()
        server.server_close()


def sns_body(data: dict[str, Any]) -> bytes:
    return json.dumps(data).encode()
