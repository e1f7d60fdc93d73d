"""Who is asking: the client's address (X-Forwarded-For believed only from trusted proxies).

web's sign-up limit counts requests per client address; only a keyed hash of it is stored.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from typing import TYPE_CHECKING

from digest.tokens import ip_hash

if TYPE_CHECKING:
    from wsgiref.types import WSGIEnvironment

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def trusted_networks(proxies: Iterable[str]) -> tuple[Network, ...]:
    """web.trusted_proxies as networks (an address alone is a network of one)."""
    return tuple(ipaddress.ip_network(proxy, strict=False) for proxy in proxies)


def is_trusted(address: str, networks: tuple[Network, ...]) -> bool:
    try:
        ip = ipaddress.ip_address(address.strip())
    except ValueError:
        return False
    return any(ip in network for network in networks)


def client_address(environ: WSGIEnvironment, networks: tuple[Network, ...]) -> str:
    """The address of the client: the peer, or, while the peer is a trusted proxy, the address
    that proxy says it forwarded for (X-Forwarded-For, read from the right)."""
    address = str(environ.get("REMOTE_ADDR", "") or "")
    if not networks:
        return address
    forwarded = [
        hop.strip()
        for header in str(environ.get("HTTP_X_FORWARDED_FOR", "")).split(",")
        if (hop := header.strip())
    ]
    # Each trusted proxy appended the address it got the request from; the first untrusted
    # one from the right is the client (anything left of it can be written by the client).
    while forwarded and is_trusted(address, networks):
        address = forwarded.pop()
    return address


def client_key(secret: str, address: str) -> str:
    """A keyed hash of a client address: enough to count its requests, not to recover it (the
    same hash a sign-up's consent record keeps)."""
    return ip_hash(secret, address)
