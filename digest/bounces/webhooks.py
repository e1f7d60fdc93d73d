"""Relay webhooks (`/webhooks/<provider>` in `digest serve`): authenticate, read, act, answer.

web ─► webhooks ─► sns / relays ─► policy; a refused call changes nothing and gets 401/403.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from digest.bounces.policy import BouncePolicy, Tally, apply_report, nonce_seen
from digest.bounces.relays import (
    check_mailgun_signature,
    check_postmark_auth,
    check_sendgrid_signature,
    mailgun_report,
    postmark_report,
    sendgrid_reports,
    ses_report,
)
from digest.bounces.report import Report
from digest.bounces.sns import SnsVerifier
from digest.errors import WebhookRefusedError
from digest.store import Store

PROVIDERS = ("ses", "mailgun", "postmark", "sendgrid")
MAX_BODY = 1024 * 1024


@dataclass(frozen=True)
class WebhookSettings:
    """Which relays may call, and their secrets (never shown in answers or logs)."""

    ses_topic_arns: frozenset[str] = frozenset()
    mailgun_signing_key: str | None = field(default=None, repr=False)
    postmark_secret: str | None = field(default=None, repr=False)
    postmark_username: str | None = None
    sendgrid_public_key: str | None = None  # the verification key SendGrid shows (public)

    def enabled(self, provider: str) -> bool:
        return {
            "ses": bool(self.ses_topic_arns),
            "mailgun": bool(self.mailgun_signing_key),
            "postmark": bool(self.postmark_secret),
            "sendgrid": bool(self.sendgrid_public_key),
        }.get(provider, False)


@dataclass(frozen=True)
class WebhookAnswer:
    """What the web side answers: a status and a short plain-text body."""

    status: int
    text: str


def _utcnow() -> datetime:
    return datetime.now(UTC)


def _json(body: bytes, provider: str) -> dict[str, Any]:
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError, RecursionError):
        # RecursionError: nesting deeper than the interpreter's stack (`[[[[...`).
        raise WebhookRefusedError(f"{provider} webhook body is not JSON", status=400) from None
    if not isinstance(data, dict):
        raise WebhookRefusedError(f"{provider} webhook body is not a JSON object", status=400)
    return data


class Webhooks:
    """Handles relay calls against the store, with the bounce policy of `digest bounces`."""

    def __init__(
        self,
        store: Store,
        policy: BouncePolicy,
        settings: WebhookSettings,
        *,
        sns: SnsVerifier | None = None,
        clock: Callable[[], datetime] = _utcnow,
    ) -> None:
        self.store = store
        self.policy = policy
        self.settings = settings
        self.sns = sns or SnsVerifier(settings.ses_topic_arns)
        self.clock = clock

    def handle(
        self,
        provider: str,
        *,
        body: bytes,
        headers: Mapping[str, str],
        path_secret: str | None = None,
    ) -> WebhookAnswer:
        """Authenticate and act on one call; the answer says what happened, in one line."""
        if provider not in PROVIDERS or not self.settings.enabled(provider):
            return WebhookAnswer(404, f"no webhook for {provider!r} is configured")
        if len(body) > MAX_BODY:
            return WebhookAnswer(413, "body too large")
        now = self.clock()
        try:
            reports, nonces = self._reports(provider, body, headers, path_secret, now)
        except WebhookRefusedError as refused:
            return WebhookAnswer(refused.status, refused.message)
        if not reports:
            return WebhookAnswer(200, "ok")
        tally = Tally()
        for number, report in enumerate(reports):
            tally.read += 1
            tally.add(
                apply_report(
                    self.store, self.policy, report, now=now, nonces=nonces if number == 0 else ()
                )
            )
        return WebhookAnswer(200, json.dumps(tally.as_dict()))

    def _reports(
        self,
        provider: str,
        body: bytes,
        headers: Mapping[str, str],
        path_secret: str | None,
        now: datetime,
    ) -> tuple[list[Report], tuple[str, ...]]:
        """The reports of a call that authenticates, and the nonces to record with them."""
        if provider == "ses":
            return self._ses(body, now), ()
        if provider == "sendgrid":
            check_sendgrid_signature(
                body,
                signature=_header(headers, "x-twilio-email-event-webhook-signature"),
                timestamp=_header(headers, "x-twilio-email-event-webhook-timestamp"),
                public_key=self.settings.sendgrid_public_key or "",
                now=now.timestamp(),
            )
            try:
                events = json.loads(body)
            except (ValueError, UnicodeDecodeError, RecursionError):
                raise WebhookRefusedError("SendGrid body is not JSON", status=400) from None
            if not isinstance(events, list):
                raise WebhookRefusedError("SendGrid body is not a list of events", status=400)
            return [_with_id(r) for r in sendgrid_reports(events)], ()
        if provider == "mailgun":
            payload = _json(body, provider)
            key = self.settings.mailgun_signing_key or ""
            token = check_mailgun_signature(payload, key, now=now.timestamp())
            # The token is Mailgun's nonce: a second call with it is a replay.
            nonce = f"mailgun-token:{token}"
            if nonce_seen(self.store, nonce):
                raise WebhookRefusedError("Mailgun token already used (replayed call)")
            return [_with_id(mailgun_report(payload))], (nonce,)
        check_postmark_auth(
            secret=self.settings.postmark_secret or "",
            username=self.settings.postmark_username,
            path_secret=path_secret,
            authorization=_header(headers, "authorization"),
        )
        return [_with_id(postmark_report(_json(body, provider)))], ()

    def _ses(self, body: bytes, now: datetime) -> list[Report]:
        message = self.sns.verify(body, now=now)
        if message.type == "SubscriptionConfirmation":
            self.sns.confirm(message)
            return []
        if message.type != "Notification":
            return []
        return [_with_id(ses_report(message.message_id, _json(message.message.encode(), "SES")))]


def _with_id(report: Report) -> Report:
    if report.key.endswith(":"):
        raise WebhookRefusedError(f"{report.origin} event without an id", status=400)
    return report


def _header(headers: Mapping[str, str], name: str) -> str | None:
    for key, value in headers.items():
        if key.lower() == name:
            return value
    return None
