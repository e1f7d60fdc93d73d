"""TLS material for SMTP tests: a throwaway CA (trustme) and a server certificate for 127.0.0.1."""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from pathlib import Path

import trustme


@dataclass(frozen=True)
class Tls:
    ca_file: Path  # the CA certificate a client must trust (smtp.ca_file)
    server_context: ssl.SSLContext  # a server context holding the certificate signed by it


def make_tls(folder: Path) -> Tls:
    """A new CA and a certificate for 127.0.0.1/localhost signed by it."""
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1", "localhost")
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    cert.configure_cert(context)
    ca_file = folder / "test-ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    return Tls(ca_file, context)
