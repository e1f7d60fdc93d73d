"""Relay bounce and complaint events (SES, Mailgun, Postmark, SendGrid) as reports; their auth.

webhooks ─► relays ─► report ─► policy; payload shapes follow each provider's documented samples.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
from collections.abc import Mapping
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from digest.bounces.report import Failure, Kind, Report, one_line, status_code_in
from digest.errors import WebhookRefusedError

# Mailgun and SendGrid sign a timestamp; a call older than this is refused (Mailgun's docs
# suggest caching tokens and refusing old timestamps).
MAX_CALL_AGE = 300.0
TIMESTAMP = re.compile(r"[0-9]{1,12}(\.[0-9]{1,9})?")
SES_BOUNCE_KINDS: dict[str, Kind] = {
    "Permanent": "hard",
    "Transient": "soft",
    "Undetermined": "soft",
}
POSTMARK_BOUNCE_KINDS: dict[str, Kind] = {
    "HardBounce": "hard",
    "BadEmailAddress": "hard",
    "SoftBounce": "soft",
    "Transient": "soft",
    "DnsError": "soft",
    "SpamComplaint": "complaint",
}


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _check_fresh(relay: str, timestamp: str, now: float) -> None:
    """A signed timestamp must be Unix seconds (ASCII digits: not `nan`, `inf` or `1e9`)
    within MAX_CALL_AGE of now."""
    if not TIMESTAMP.fullmatch(timestamp):
        raise WebhookRefusedError(f"{relay} timestamp {timestamp[:40]!r} is not a number")
    if abs(now - float(timestamp)) > MAX_CALL_AGE:
        raise WebhookRefusedError(f"{relay} timestamp {timestamp} is stale (replayed?)")


def ses_report(sns_message_id: str, message: Mapping[str, Any]) -> Report:
    """An SES notification (bounce, complaint, or anything else, ignored) as a report."""
    kind = _text(message.get("notificationType") or message.get("eventType"))
    mail = _dict(message.get("mail"))
    headers = _dict(mail.get("commonHeaders"))
    return_paths = tuple(a for a in (_text(mail.get("source")),) if a)
    failures: list[Failure] = []
    key = f"ses:{sns_message_id}"
    if kind == "Bounce":
        bounce = _dict(message.get("bounce"))
        bounce_type = _text(bounce.get("bounceType"))
        failure_kind = SES_BOUNCE_KINDS.get(bounce_type, "ignored")
        key = f"ses:{bounce.get('feedbackId') or sns_message_id}"
        for recipient in bounce.get("bouncedRecipients") or []:
            recipient = _dict(recipient)
            diagnostic = _text(recipient.get("diagnosticCode"))
            status = status_code_in(_text(recipient.get("status"))) or status_code_in(diagnostic)
            failures.append(
                Failure(
                    failure_kind,
                    (_text(recipient.get("emailAddress")),),
                    status,
                    one_line(diagnostic or f"{bounce_type} {bounce.get('bounceSubType') or ''}"),
                )
            )
    elif kind == "Complaint":
        complaint = _dict(message.get("complaint"))
        feedback = _text(complaint.get("complaintFeedbackType")) or "abuse"
        failure_kind = "ignored" if feedback == "not-spam" else "complaint"
        key = f"ses:{complaint.get('feedbackId') or sns_message_id}"
        reason = one_line(f"{feedback} report ({complaint.get('userAgent') or 'feedback loop'})")
        for recipient in complaint.get("complainedRecipients") or []:
            address = _text(_dict(recipient).get("emailAddress"))
            failures.append(Failure(failure_kind, (address,), None, reason))
    return Report(
        key=key,
        origin="ses",
        failures=tuple(f for f in failures if f.addresses[0]),
        return_paths=return_paths,
        original_message_id=_text(headers.get("messageId")) or None,
    )


def check_mailgun_signature(payload: Mapping[str, Any], signing_key: str, *, now: float) -> str:
    """The token of a correctly signed, fresh Mailgun call (for the replay check)."""
    signature = _dict(payload.get("signature"))
    timestamp, token = _text(signature.get("timestamp")), _text(signature.get("token"))
    given = _text(signature.get("signature"))
    if not (timestamp and token and given):
        raise WebhookRefusedError("Mailgun call without signature", status=401)
    expected = hmac.new(
        signing_key.encode(), (timestamp + token).encode(), hashlib.sha256
    ).hexdigest()
    if not hmac.compare_digest(expected, given.lower()):
        raise WebhookRefusedError("Mailgun signature does not verify")
    _check_fresh("Mailgun", timestamp, now)
    return token


def mailgun_report(payload: Mapping[str, Any]) -> Report:
    """A Mailgun `failed` or `complained` event as a report (other events are ignored)."""
    event = _dict(payload.get("event-data"))
    name, severity = _text(event.get("event")), _text(event.get("severity"))
    status = _dict(event.get("delivery-status"))
    message_text = _text(status.get("message")) or _text(status.get("description"))
    code = status_code_in(_text(status.get("enhanced-code"))) or status_code_in(message_text)
    kind: Kind = "ignored"
    if name == "failed" and severity == "permanent":
        # `old`: Mailgun gave up retrying a temporary failure; that is a soft bounce.
        kind = "soft" if event.get("reason") == "old" else "hard"
    elif name == "complained":
        kind = "complaint"
    # `failed` with severity temporary: Mailgun will retry; like a DSN's `delayed`, no bounce.
    reason = one_line(message_text or f"{name} {severity} {event.get('reason') or ''}")
    recipient = _text(event.get("recipient"))
    headers = _dict(_dict(event.get("message")).get("headers"))
    message_id = _text(headers.get("message-id"))
    return Report(
        key=f"mailgun:{event.get('id') or ''}",
        origin="mailgun",
        failures=(Failure(kind, (recipient,), code, reason),) if recipient else (),
        return_paths=tuple(a for a in (_text(_dict(event.get("envelope")).get("sender")),) if a),
        original_message_id=f"<{message_id.strip('<>')}>" if message_id else None,
    )


def check_postmark_auth(
    *,
    secret: str,
    username: str | None,
    path_secret: str | None,
    authorization: str | None,
) -> None:
    """A Postmark call carries the secret in its URL, or as the password of basic auth."""
    if path_secret is not None:
        if hmac.compare_digest(path_secret.encode(), secret.encode()):
            return
        raise WebhookRefusedError("Postmark webhook secret in the URL does not match")
    if not authorization or not authorization.lower().startswith("basic "):
        raise WebhookRefusedError("Postmark call without credentials", status=401)
    try:
        decoded = base64.b64decode(authorization[6:].strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        raise WebhookRefusedError("Postmark basic auth is garbled", status=401) from None
    user, _, password = decoded.partition(":")
    user_ok = username is None or hmac.compare_digest(user.encode(), username.encode())
    if not (hmac.compare_digest(password.encode(), secret.encode()) and user_ok):
        raise WebhookRefusedError("Postmark basic auth does not match", status=401)


def postmark_report(payload: Mapping[str, Any]) -> Report:
    """A Postmark Bounce or SpamComplaint webhook as a report."""
    record = _text(payload.get("RecordType"))
    bounce_type = _text(payload.get("Type"))
    kind: Kind = "ignored"
    if record == "SpamComplaint":
        kind = "complaint"
    elif record == "Bounce":
        kind = POSTMARK_BOUNCE_KINDS.get(bounce_type, "ignored")
    details = _text(payload.get("Details"))
    reason = one_line(f"{bounce_type}: {details or _text(payload.get('Description'))}")
    address = _text(payload.get("Email"))
    return Report(
        key=f"postmark:{record}:{payload.get('ID') or ''}",
        origin="postmark",
        failures=(Failure(kind, (address,), status_code_in(details), reason),) if address else (),
    )


def check_sendgrid_signature(
    body: bytes, *, signature: str | None, timestamp: str | None, public_key: str, now: float
) -> None:
    """SendGrid's signed Event Webhook: ECDSA P-256 over timestamp + body, and a fresh stamp."""
    if not signature or not timestamp:
        raise WebhookRefusedError("SendGrid call without signature", status=401)
    try:
        key = serialization.load_der_public_key(base64.b64decode(public_key))
        raw_signature = base64.b64decode(signature, validate=True)
    except (binascii.Error, ValueError):
        raise WebhookRefusedError("SendGrid signature or key is not base64 DER") from None
    if not isinstance(key, ec.EllipticCurvePublicKey):
        raise WebhookRefusedError("SendGrid verification key is not an ECDSA key")
    try:
        key.verify(raw_signature, timestamp.encode() + body, ec.ECDSA(hashes.SHA256()))
    except InvalidSignature:
        raise WebhookRefusedError("SendGrid signature does not verify") from None
    _check_fresh("SendGrid", timestamp, now)


def sendgrid_reports(events: list[Any]) -> list[Report]:
    """SendGrid `bounce` and `spamreport` events as reports (others are ignored)."""
    reports = []
    for item in events:
        event = _dict(item)
        name, kind_name = _text(event.get("event")), _text(event.get("type"))
        kind: Kind = "ignored"
        if name == "bounce":
            # type `blocked`: the receiver refused for now (reputation, content): soft.
            kind = "soft" if kind_name == "blocked" else "hard"
        elif name == "spamreport":
            kind = "complaint"
        address = _text(event.get("email"))
        status = status_code_in(_text(event.get("status")))
        message_id = _text(event.get("smtp-id"))
        reports.append(
            Report(
                key=f"sendgrid:{event.get('sg_event_id') or ''}",
                origin="sendgrid",
                failures=(Failure(kind, (address,), status, one_line(_text(event.get("reason")))),)
                if address
                else (),
                original_message_id=message_id or None,
            )
        )
    return reports
