"""The values every bounce source produces: a report and the failed recipients it names.

mail, relays ─► report ─► policy; nothing here reads input or touches the store.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

# hard: permanent (5.x.x); soft: transient (4.x.x) given up; complaint: "this is spam";
# ignored: a warning (delayed), a positive DSN, a report type we do not act on.
Kind = Literal["hard", "soft", "complaint", "ignored"]
ORIGINS = ("mail", "ses", "mailgun", "postmark", "sendgrid")
MAX_REASON = 500
_STATUS = re.compile(r"\b([245])\.(\d{1,3})\.(\d{1,3})\b")
_SPACE = re.compile(r"\s+")


@dataclass(frozen=True)
class Failure:
    """One recipient a report is about: what happened and why."""

    kind: Kind
    # The addresses the report gives for the recipient (original first, then final).
    addresses: tuple[str, ...]
    status_code: str | None = None  # the enhanced status code, like 5.1.1
    reason: str = ""


@dataclass(frozen=True)
class Report:
    """One bounce or complaint report: a DSN, an ARF message, a webhook event."""

    key: str  # the idempotency key: the same report twice has the same key
    origin: str  # mail | ses | mailgun | postmark | sendgrid
    failures: tuple[Failure, ...]
    # Where the report was sent (VERP addresses show up here) and the original envelope sender.
    return_paths: tuple[str, ...] = ()
    original_message_id: str | None = None


def status_code_in(text: str | None) -> str | None:
    """The first enhanced status code (RFC 3463, like 5.1.1) in a text, if any."""
    if not text:
        return None
    match = _STATUS.search(text)
    return ".".join(match.groups()) if match else None


def kind_of_status(status: str | None, *, default: Kind = "hard") -> Kind:
    """5.x.x is hard, 4.x.x soft, 2.x.x not a failure; no status: `default`."""
    if not status:
        return default
    if status.startswith("5"):
        return "hard"
    if status.startswith("4"):
        return "soft"
    return "ignored"


def one_line(text: str | None) -> str:
    """A reason as one trimmed line of at most MAX_REASON characters."""
    if not text:
        return ""
    line = _SPACE.sub(" ", text).strip()
    return line if len(line) <= MAX_REASON else line[: MAX_REASON - 1] + "…"


def clean_address(address: str) -> str:
    """`rfc822; <Alice@Example.org>` or `<a@b>` as a plain address, case kept."""
    value = address.strip()
    if ";" in value:
        value = value.split(";", 1)[1].strip()
    return value.strip("<> \t\r\n")
