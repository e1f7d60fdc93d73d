"""Read one bounce or complaint message: an RFC 3464 DSN, an RFC 5965 ARF report, or another bounce.

sources ─► mail ─► report; bounces in no standard format go to flufl.bounce (Mailman's detectors).
"""

from __future__ import annotations

import hashlib
import logging
import re
from email import message_from_bytes
from email.iterators import body_line_iterator
from email.message import Message
from email.parser import HeaderParser
from email.utils import getaddresses

from flufl.bounce import all_failures

from digest.bounces.report import (
    Failure,
    Kind,
    Report,
    clean_address,
    kind_of_status,
    one_line,
    status_code_in,
)

# The headers a delivered report carries its envelope recipient in (a VERP address, for us).
ENVELOPE_HEADERS = ("delivered-to", "x-original-to", "envelope-to", "x-envelope-to", "to", "cc")
DSN_TYPES = ("message/delivery-status", "message/global-delivery-status")
ARF_TYPE = "message/feedback-report"
ORIGINAL_MESSAGE_TYPES = ("message/rfc822", "message/global")
ORIGINAL_HEADER_TYPES = ("text/rfc822-headers", "message/rfc822-headers", "message/global-headers")
# ARF feedback types that are the recipient's "this is spam"; others (not-spam, virus,
# auth-failure) are not their answer to us.
COMPLAINT_TYPES = frozenset({"abuse", "fraud"})
MAX_KEY = 240
_SMTP_REPLY = re.compile(r"\b[45]\d\d[ -]|\b[45]\.\d{1,3}\.\d{1,3}\b")
_BLANK_LINE = re.compile(r"\r?\n[ \t]*\r?\n")
# A report is a few parts deep (multipart/report > message/rfc822 > multipart/alternative);
# a message deeper or with more parts is not one (and would cost the stack or minutes).
MAX_DEPTH = 20
MAX_PARTS = 500
# How far into a non-standard bounce to look for the server's reply line.
REASON_SCAN_LINES = 200

# flufl.bounce logs every detector it tries at INFO, and a detector that trips over a malformed
# message as an ERROR with its traceback; for us that message is "not a bounce" (counted
# ignored), so its log stays quiet.
logging.getLogger("flufl.bounce").setLevel(logging.CRITICAL)


class UnreadableMessageError(ValueError):
    """A message too deep or with too many parts to be a report (counted `ignored`)."""


def read_report(raw: bytes) -> Report:
    """The report one message makes; a message that is no bounce has no failures.

    UnreadableMessageError for a message nested deeper than MAX_DEPTH or with more than
    MAX_PARTS parts (no report is; such a message would take minutes or the stack)."""
    # Each part starts at a `--boundary` line: count them before parsing anything.
    if raw.count(b"\n--") > 2 * MAX_PARTS + 2:
        raise UnreadableMessageError(f"more than {MAX_PARTS} MIME parts")
    try:
        message = message_from_bytes(raw)
        _check_shape(message)
        return _report(message, raw)
    except RecursionError:
        raise UnreadableMessageError(f"MIME parts nested deeper than {MAX_DEPTH}") from None


def _check_shape(message: Message) -> None:
    """UnreadableMessageError unless the parts nest at most MAX_DEPTH deep, MAX_PARTS in all
    (walked with a list, not recursion)."""
    pending: list[tuple[Message, int]] = [(message, 0)]
    parts = 0
    while pending:
        part, depth = pending.pop()
        parts += 1
        if depth > MAX_DEPTH:
            raise UnreadableMessageError(f"MIME parts nested deeper than {MAX_DEPTH}")
        if parts > MAX_PARTS:
            raise UnreadableMessageError(f"more than {MAX_PARTS} MIME parts")
        payload = part.get_payload()
        # A DSN's recipient blocks are header blocks, not parts (5,000 of them are counted by
        # the policy, not here).
        if isinstance(payload, list) and part.get_content_type() not in (*DSN_TYPES, ARF_TYPE):
            pending.extend((child, depth + 1) for child in payload if isinstance(child, Message))


def _report(message: Message, raw: bytes) -> Report:
    original = _original_headers(message)
    return_paths = _envelope_addresses(message, ENVELOPE_HEADERS)
    if original is not None:
        return_paths += _envelope_addresses(original, ("return-path",))
    failures: tuple[Failure, ...]
    arf = _part(message, (ARF_TYPE,))
    if arf is not None:
        fields = _field_blocks(arf)
        first = fields[0] if fields else Message()
        return_paths += tuple(clean_address(v) for v in first.get_all("original-mail-from", []))
        failures = _complaint(first, original)
    else:
        dsn = _part(message, DSN_TYPES)
        failures = _dsn_failures(dsn) if dsn is not None else _detected(message)
    original_id = original.get("message-id") if original is not None else None
    return Report(
        key=_report_key(message, raw),
        origin="mail",
        failures=failures,
        return_paths=tuple(dict.fromkeys(a for a in return_paths if "@" in a)),
        original_message_id=str(original_id).strip() if original_id else None,
    )


def _report_key(message: Message, raw: bytes) -> str:
    """The report's Message-ID (the same report found twice), else a hash of its bytes."""
    message_id = str(message.get("message-id") or "").strip()
    if message_id and len(message_id) <= MAX_KEY:
        return f"mail:{message_id}"
    return f"mail-sha256:{hashlib.sha256(raw).hexdigest()}"


def _part(message: Message, types: tuple[str, ...]) -> Message | None:
    for part in message.walk():
        if part.get_content_type() in types:
            return part
    return None


def _field_blocks(part: Message) -> list[Message]:
    """The header blocks of a message/delivery-status or message/feedback-report part."""
    payload = part.get_payload()
    if isinstance(payload, list):
        return [block for block in payload if isinstance(block, Message)]
    raw = part.get_payload(decode=True)
    text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(payload)
    parser = HeaderParser()
    return [parser.parsestr(chunk.strip() + "\n") for chunk in _BLANK_LINE.split(text) if chunk]


def _original_headers(message: Message) -> Message | None:
    """The headers of the message the report is about, when the report includes them."""
    for part in message.walk():
        content_type = part.get_content_type()
        if content_type in ORIGINAL_MESSAGE_TYPES + ORIGINAL_HEADER_TYPES:
            payload = part.get_payload()
            if isinstance(payload, list) and payload and isinstance(payload[0], Message):
                return payload[0]
            raw = part.get_payload(decode=True)
            if isinstance(raw, bytes) and raw.strip():
                return HeaderParser().parsestr(raw.decode("utf-8", "replace"))
    return None


def _envelope_addresses(message: Message, names: tuple[str, ...]) -> tuple[str, ...]:
    values = [str(value) for name in names for value in message.get_all(name, [])]
    return tuple(address for _name, address in getaddresses(values) if address)


def _dsn_failures(part: Message) -> tuple[Failure, ...]:
    """One failure per recipient block of an RFC 3464 delivery status notification."""
    failures = []
    for block in _field_blocks(part):
        final = block.get("final-recipient")
        if final is None:
            continue  # the per-message block (Reporting-MTA, Arrival-Date)
        addresses = [clean_address(str(v)) for v in (block.get("original-recipient"), final) if v]
        action = str(block.get("action") or "").strip().lower()
        diagnostic = str(block.get("diagnostic-code") or "")
        status = status_code_in(str(block.get("status") or "")) or status_code_in(diagnostic)
        # Only `failed` is a bounce: `delayed` is a warning (the MTA still tries), and
        # delivered/relayed/expanded are good news.
        kind: Kind = kind_of_status(status) if action == "failed" else "ignored"
        failures.append(
            Failure(
                kind=kind,
                addresses=tuple(dict.fromkeys(a for a in addresses if "@" in a)),
                status_code=status,
                reason=one_line(diagnostic or f"{action} {block.get('status') or ''}"),
            )
        )
    return tuple(failures)


def _complaint(fields: Message, original: Message | None) -> tuple[Failure, ...]:
    """The failure an ARF feedback report makes: a complaint for `abuse` and `fraud`."""
    feedback = str(fields.get("feedback-type") or "").strip().lower()
    addresses = [clean_address(str(v)) for v in fields.get_all("original-rcpt-to", [])]
    if not addresses and original is not None:
        addresses = list(_envelope_addresses(original, ("to",)))
    reporter = fields.get("user-agent") or fields.get("reporting-mta") or "a feedback loop"
    kind: Kind = "complaint" if feedback in COMPLAINT_TYPES else "ignored"
    reason = one_line(f"{feedback or 'unknown'} report ({reporter})")
    return (Failure(kind, tuple(a for a in addresses if "@" in a), None, reason),)


def _detected(message: Message) -> tuple[Failure, ...]:
    """A bounce in no standard format, through flufl.bounce's detectors."""
    try:
        temporary, permanent = all_failures(message)
    except (LookupError, ValueError, TypeError, AttributeError):
        # A detector tripping over a malformed message: the message is no usable report.
        return ()
    reason = _reply_line(message)
    status = status_code_in(reason)
    failures = [
        Failure("hard", (address.decode("ascii", "replace"),), status, reason)
        for address in sorted(permanent)
    ]
    failures += [
        Failure("soft", (address.decode("ascii", "replace"),), status, reason)
        for address in sorted(temporary - permanent)
    ]
    return tuple(failures)


def _reply_line(message: Message) -> str:
    """The first line that looks like the refusing server's reply (`550 5.1.1 ...`)."""
    try:
        for number, line in enumerate(body_line_iterator(message)):
            if number > REASON_SCAN_LINES:
                break
            if _SMTP_REPLY.search(line):
                return one_line(line)
    except (LookupError, ValueError):
        return ""
    return ""
