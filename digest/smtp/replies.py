"""What an SMTP reply means (the one map from replies to outcomes) and what it may show in a
message (AUTH payloads and our credentials redacted).

smtp.stream and smtp.client ─► smtp.replies: a relay that echoes `AUTH PLAIN <base64>` must not
print the password.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

from digest.errors import escape_controls

Outcome = Literal["sent", "transient", "permanent"]


Stage = Literal["mail", "rcpt", "data"]  # data: the DATA command and the reply to the final dot
_ENHANCED_4_7 = re.compile(rb"^4\.7\.\d{1,3}\b")


@dataclass(frozen=True)
class SendResult:
    """What the server said about one message to one recipient.

    `throttled`: the relay asks us to slow down (see `throttling`); the message was not taken
    and goes again later, without counting as the recipient's failure.
    """

    outcome: Outcome
    code: int
    reply: str
    throttled: bool = False


def outcome_of(code: int) -> Outcome:
    """2xx: sent; 4xx: transient (try again later); anything else: permanent."""
    if 200 <= code < 300:
        return "sent"
    return "transient" if 400 <= code < 500 else "permanent"


def throttling(code: int, raw: bytes, stage: Stage) -> bool:
    """A reply that means "slow down" (CONTRACT's relay rules): 421 anywhere; at MAIL or DATA
    a 452 or 454, or any 4xx with an enhanced status 4.7.x. At RCPT a 4xx is the recipient's."""
    if code == 421:
        return True
    if stage == "rcpt" or not 400 <= code < 500:
        return False
    return code in (452, 454) or bool(_ENHANCED_4_7.match(raw.lstrip()))


def result_of(code: int, raw: bytes, stage: Stage) -> SendResult:
    """The outcome of one reply, from the one map above."""
    return SendResult(outcome_of(code), code, reply_text(raw), throttling(code, raw, stage))


REDACTED = "[redacted]"
# `AUTH PLAIN <payload>`, `AUTH LOGIN <payload>`, `AUTH XOAUTH2 <token>` ...: the payload goes.
_AUTH_PAYLOAD = re.compile(r"(\bAUTH\s+[A-Za-z0-9_-]+)\s+[^\s\"'<>]+", re.IGNORECASE)
# One line of printable ASCII that does not say AUTH: nearly every reply, returned as it is.
_PLAIN = re.compile(rb"(?!.*auth)[\x20-\x7e]*", re.IGNORECASE)


def reply_text(reply: bytes | str) -> str:
    """A server's reply as one line of text: AUTH payloads redacted, control characters escaped.

    A multi-line reply (smtplib joins its lines with LF) is joined with spaces.
    """
    if isinstance(reply, bytes):
        if _PLAIN.fullmatch(reply):
            return reply.decode("ascii").strip()
        text = reply.decode("utf-8", "replace")
    else:
        text = reply
    text = " ".join(part.strip() for part in text.splitlines())
    return escape_controls(_AUTH_PAYLOAD.sub(rf"\1 {REDACTED}", text))


def auth_secrets(username: str, password: str) -> list[str]:
    """The strings our AUTH exchange puts on the wire that give the password away."""
    if not password:
        return []

    def b64(text: str) -> str:
        return base64.b64encode(text.encode("utf-8")).decode("ascii")

    # PLAIN sends "\0user\0password", LOGIN the password alone: each base64-encoded.
    encoded = [b64(f"\0{username}\0{password}"), b64(password)]
    return [*encoded, *(e.rstrip("=") for e in encoded), password]


def redact(text: str, secrets: Iterable[str]) -> str:
    """`text` with each secret (longest first) replaced by [redacted]."""
    for secret in sorted({s for s in secrets if len(s) >= 3}, key=len, reverse=True):
        text = text.replace(secret, REDACTED)
    return text
