"""VERP: one envelope sender per delivery, `bounces+<code>@example.com`, naming run and subscriber.

delivery puts the address in MAIL FROM; bounces reads the code back from a returned DSN.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from typing import NamedTuple

VERP_SALT = b"digest-verp-v1"
# 10 base32 characters = 50 bits of HMAC: a forger must guess one in 10^15 per try.
MAC_CHARS = 10
_BASE36 = "0123456789abcdefghijklmnopqrstuvwxyz"
_CODE = re.compile(rf"^([0-9a-z]{{1,12}})-([0-9a-z]{{1,12}})-([a-z2-7]{{{MAC_CHARS}}})$")


class DeliveryRef(NamedTuple):
    """The delivery a VERP code names."""

    run_id: int
    subscriber_id: int


def _base36(number: int) -> str:
    if number < 0:
        raise ValueError("VERP ids must not be negative")
    digits = ""
    while True:
        number, rest = divmod(number, 36)
        digits = _BASE36[rest] + digits
        if number == 0:
            return digits


def _mac(secret: str, body: str) -> str:
    key = hmac.new(secret.encode(), VERP_SALT, hashlib.sha256).digest()
    raw = hmac.new(key, body.encode("ascii"), hashlib.sha256).digest()
    # Lower-case base32: the code survives servers that change the case of local parts.
    return base64.b32encode(raw).decode("ascii").lower()[:MAC_CHARS]


def verp_code(secret: str, run_id: int, subscriber_id: int) -> str:
    """The short signed code for one delivery, like `1k-3f9-ab3d5k7q2m`."""
    body = f"{_base36(run_id)}-{_base36(subscriber_id)}"
    return f"{body}-{_mac(secret, body)}"


def read_verp_code(secret: str, code: str) -> DeliveryRef | None:
    """The delivery a code names, or None if it is garbled or its signature does not match."""
    match = _CODE.match(code.strip().lower())
    if match is None:
        return None
    run, subscriber, mac = match.groups()
    if not hmac.compare_digest(_mac(secret, f"{run}-{subscriber}"), mac):
        return None
    return DeliveryRef(int(run, 36), int(subscriber, 36))


def verp_address(bounce_address: str, code: str) -> str:
    """`bounces@example.com` + code -> `bounces+<code>@example.com`."""
    local, _, domain = bounce_address.rpartition("@")
    return f"{local}+{code}@{domain}"


def code_in_address(bounce_address: str, address: str) -> str | None:
    """The code in `bounces+<code>@example.com` when the address is a VERP form of ours."""
    local, _, domain = bounce_address.rpartition("@")
    their_local, _, their_domain = address.strip().strip("<>").rpartition("@")
    if their_domain.lower() != domain.lower():
        return None
    prefix = f"{local}+".lower()
    if not their_local.lower().startswith(prefix):
        return None
    return their_local[len(prefix) :] or None
