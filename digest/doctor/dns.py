"""The DNS questions doctor asks (dnspython lives here): TXT and PTR records, read as text.

doctor.checks ─► doctor.dns; a nameserver may be given (HOST or HOST:PORT), else the system's.
"""

from __future__ import annotations

from dataclasses import dataclass

import dns.exception
import dns.resolver
import dns.reversename


class DnsLookupError(Exception):
    """The question could not be answered (timeout, refused): not the same as no record."""


@dataclass
class Dns:
    """A resolver: the system's, or one nameserver (tests use one on loopback)."""

    nameserver: str | None = None
    timeout: float = 5.0

    def _resolver(self) -> dns.resolver.Resolver:
        if self.nameserver is None:
            resolver = dns.resolver.Resolver()
        else:
            resolver = dns.resolver.Resolver(configure=False)
            host, _, port = (
                self.nameserver.rpartition(":")
                if ":" in self.nameserver
                else (
                    self.nameserver,
                    "",
                    "",
                )
            )
            resolver.nameservers = [host or self.nameserver]
            if port:
                resolver.port = int(port)
        resolver.lifetime = self.timeout
        return resolver

    def _answer(self, name: str, rdtype: str) -> list[str]:
        try:
            answer = self._resolver().resolve(name, rdtype)
        except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer):
            return []
        except dns.exception.DNSException as exc:
            raise DnsLookupError(f"{rdtype} {name}: {type(exc).__name__}") from exc
        if rdtype == "TXT":
            return [b"".join(r.strings).decode("utf-8", "replace") for r in answer]
        return [r.to_text() for r in answer]

    def txt(self, name: str) -> list[str]:
        """The TXT records of `name` (each record's strings joined); [] when none."""
        return self._answer(name, "TXT")

    def ptr(self, address: str) -> list[str]:
        """The PTR names of an IP address; [] when none."""
        return self._answer(dns.reversename.from_address(address).to_text(), "PTR")
