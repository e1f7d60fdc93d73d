"""Relay webhooks: signed SES (SNS), Mailgun, Postmark, SendGrid calls act; others change nothing.

The SNS signing certificate is fetched over verified HTTPS from a local server; keys are made here.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from digest.bounces.webhooks import WebhookAnswer, Webhooks, WebhookSettings
from digest.mail.verp import verp_address, verp_code
from digest.store import Store
from tests.helpers.bounce_fixtures import (
    NOW,
    SECRET,
    VERP_POLICY,
    add_subscribers,
    sent_run,
    statuses,
)
from tests.helpers.sns_fixtures import (
    CERT_PATH,
    SNS_HOST,
    TOPIC,
    FakeSns,
    running_fake_sns,
    sns_body,
)

SAMPLES = Path(__file__).parents[1] / "webhook_samples"
MAILGUN_KEY = "key-mailgun-webhook-signing-0123456789"
POSTMARK_SECRET = "postmark-hook-secret-0123456789"
ALL_ACTIVE = {
    "alice@example.net": "active",
    "bob@example.org": "active",
    "carol@corp.example.com": "active",
    "erin@example.com": "active",
}


def payload(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((SAMPLES / name).read_text())
    return data


@pytest.fixture
def store(sqlite_store: Store) -> Store:
    add_subscribers(sqlite_store, list(ALL_ACTIVE))
    return sqlite_store


@pytest.fixture(scope="module")
def sns(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FakeSns]:
    with running_fake_sns(tmp_path_factory.mktemp("sns")) as fake:
        yield fake


@pytest.fixture
def hooks(store: Store, sns: FakeSns) -> Webhooks:
    settings = WebhookSettings(
        ses_topic_arns=frozenset({TOPIC}),
        mailgun_signing_key=MAILGUN_KEY,
        postmark_secret=POSTMARK_SECRET,
        postmark_username="postmark",
    )
    return Webhooks(store, VERP_POLICY, settings, sns=sns.verifier(), clock=lambda: NOW)


def _events(store: Store) -> int:
    with store.session() as session:
        return int(session.scalar(sa.text("SELECT count(*) FROM bounce_events")) or 0)


def _ses(hooks: Webhooks, data: dict[str, Any]) -> WebhookAnswer:
    return hooks.handle("ses", body=sns_body(data), headers={})


# --- Amazon SES through SNS ---


def test_a_signed_ses_bounce_and_complaint_act(hooks: Webhooks, store: Store, sns: FakeSns) -> None:
    fetched_before = sns.requests.count(CERT_PATH)
    bounce = sns.message("Notification", json.dumps(payload("ses-bounce.json")), timestamp=NOW)
    answer = _ses(hooks, bounce)
    assert (answer.status, json.loads(answer.text)["hard"]) == (200, 1)
    complaint = sns.message(
        "Notification", json.dumps(payload("ses-complaint.json")), timestamp=NOW, version="2"
    )
    assert json.loads(_ses(hooks, complaint).text)["complaints"] == 1
    assert statuses(store) == {
        **ALL_ACTIVE,
        "alice@example.net": "bounced",
        "erin@example.com": "unsubscribed",
    }
    # The same notification delivered again by SNS changes nothing.
    assert json.loads(_ses(hooks, bounce).text)["duplicates"] == 1
    assert _events(store) == 2
    # The signing certificate was fetched once for the three messages.
    assert sns.requests.count(CERT_PATH) == fetched_before + 1


def test_an_ses_bounce_to_a_verp_address_names_the_delivery(
    hooks: Webhooks, store: Store, sns: FakeSns
) -> None:
    ids = add_subscribers(store, ["alice@example.net", "bob@example.org"])
    run = sent_run(store, list(ids.values()))
    data = payload("ses-bounce.json")
    code = verp_code(SECRET, run.run_id, ids["bob@example.org"])
    data["mail"]["source"] = verp_address("bounces@example.com", code)
    _ses(hooks, sns.message("Notification", json.dumps(data), timestamp=NOW))
    assert statuses(store)["bob@example.org"] == "bounced"
    assert statuses(store)["alice@example.net"] == "active"


def _refused(hooks: Webhooks, store: Store, data: dict[str, Any], status: int, text: str) -> None:
    answer = _ses(hooks, data)
    assert (answer.status, text in answer.text) == (status, True), answer
    assert statuses(store) == ALL_ACTIVE
    assert _events(store) == 0


def test_ses_calls_that_do_not_verify_change_nothing(
    hooks: Webhooks, store: Store, sns: FakeSns
) -> None:
    message = json.dumps(payload("ses-bounce.json"))
    good = sns.message("Notification", message, timestamp=NOW)
    _refused(hooks, store, {k: v for k, v in good.items() if k != "Signature"}, 401, "not signed")
    _refused(hooks, store, {**good, "Signature": ""}, 401, "not signed")
    _refused(hooks, store, {**good, "Signature": "%%%"}, 403, "not base64")
    _refused(hooks, store, {**good, "SignatureVersion": "3"}, 403, "is not 1 or 2")
    stranger = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    forged = sns.message("Notification", message, timestamp=NOW, key=stranger)
    _refused(hooks, store, forged, 403, "does not verify")
    altered = {**good, "Message": message.replace("alice@", "erin@")}
    _refused(hooks, store, altered, 403, "does not verify")
    stale = sns.message("Notification", message, timestamp=NOW - timedelta(hours=2))
    _refused(hooks, store, stale, 403, "stale")
    other_topic = sns.message("Notification", message, timestamp=NOW, topic=TOPIC + "-other")
    _refused(hooks, store, other_topic, 403, "is not configured")
    for url in (
        f"http://{SNS_HOST}/cert.pem",
        "https://sns.us-east-1.amazonaws.com.evil.example/cert.pem",
        "https://evil.example/sns.us-east-1.amazonaws.com/cert.pem",
    ):
        foreign = sns.message("Notification", message, timestamp=NOW, cert_url=url)
        _refused(hooks, store, foreign, 403, "is not https on an SNS amazonaws.com host")


def test_an_sns_subscription_is_confirmed(hooks: Webhooks, sns: FakeSns) -> None:
    confirmation = sns.message("SubscriptionConfirmation", "You have chosen...", timestamp=NOW)
    assert _ses(hooks, confirmation) == WebhookAnswer(200, "ok")
    assert f"/?Action=ConfirmSubscription&TopicArn={TOPIC}&Token={confirmation['Token']}" in (
        sns.requests
    )


def test_a_subscription_for_another_topic_is_not_confirmed(hooks: Webhooks, sns: FakeSns) -> None:
    other = sns.message("SubscriptionConfirmation", "x", timestamp=NOW, topic="arn:aws:sns:x")
    assert _ses(hooks, other).status == 403
    assert not [r for r in sns.requests if "ConfirmSubscription" in r and "arn:aws:sns:x" in r]


# --- Mailgun ---


def _mailgun(name: str, *, key: str = MAILGUN_KEY, at: float | None = None) -> dict[str, Any]:
    data = payload(name)
    timestamp = str(int(at if at is not None else NOW.timestamp()))
    token = hashlib.sha256(f"{name}{timestamp}{key}".encode()).hexdigest()[:50]
    signature = hmac.new(key.encode(), (timestamp + token).encode(), hashlib.sha256).hexdigest()
    data["signature"] = {"timestamp": timestamp, "token": token, "signature": signature}
    return data


def _post_mailgun(hooks: Webhooks, data: dict[str, Any]) -> WebhookAnswer:
    return hooks.handle("mailgun", body=json.dumps(data).encode(), headers={})


def test_signed_mailgun_bounce_and_complaint_act(hooks: Webhooks, store: Store) -> None:
    assert json.loads(_post_mailgun(hooks, _mailgun("mailgun-failed.json")).text)["hard"] == 1
    answer = _post_mailgun(hooks, _mailgun("mailgun-complained.json"))
    assert json.loads(answer.text)["complaints"] == 1
    assert statuses(store) == {
        **ALL_ACTIVE,
        "bob@example.org": "bounced",
        "erin@example.com": "unsubscribed",
    }


def test_mailgun_calls_that_do_not_verify_change_nothing(hooks: Webhooks, store: Store) -> None:
    unsigned = payload("mailgun-failed.json")
    assert _post_mailgun(hooks, unsigned).status == 401
    wrong = _mailgun("mailgun-failed.json", key="key-someone-else-0000000000")
    assert _post_mailgun(hooks, wrong) == WebhookAnswer(403, "Mailgun signature does not verify")
    stale = _mailgun("mailgun-failed.json", at=NOW.timestamp() - 600)
    assert "is stale" in _post_mailgun(hooks, stale).text
    tampered = _mailgun("mailgun-failed.json")
    tampered["signature"]["timestamp"] = str(int(NOW.timestamp()) + 1)
    assert _post_mailgun(hooks, tampered).status == 403
    assert statuses(store) == ALL_ACTIVE and _events(store) == 0


def test_a_replayed_mailgun_call_is_refused(hooks: Webhooks, store: Store) -> None:
    call = _mailgun("mailgun-complained.json")
    assert _post_mailgun(hooks, call).status == 200
    assert _post_mailgun(hooks, call) == WebhookAnswer(
        403, "Mailgun token already used (replayed call)"
    )
    assert _events(store) == 1


def test_a_temporary_mailgun_failure_is_no_bounce(hooks: Webhooks, store: Store) -> None:
    data = payload("mailgun-failed.json")
    data["event-data"]["severity"] = "temporary"
    data["signature"] = _mailgun("mailgun-failed.json")["signature"]
    assert json.loads(_post_mailgun(hooks, data).text)["ignored"] == 1
    assert statuses(store) == ALL_ACTIVE


# --- Postmark ---


def _basic(user: str, password: str) -> dict[str, str]:
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


def test_postmark_with_the_secret_in_the_url_or_basic_auth_acts(
    hooks: Webhooks, store: Store
) -> None:
    bounce = json.dumps(payload("postmark-bounce.json")).encode()
    answer = hooks.handle("postmark", body=bounce, headers={}, path_secret=POSTMARK_SECRET)
    assert json.loads(answer.text)["hard"] == 1
    complaint = json.dumps(payload("postmark-spam-complaint.json")).encode()
    answer = hooks.handle("postmark", body=complaint, headers=_basic("postmark", POSTMARK_SECRET))
    assert json.loads(answer.text)["complaints"] == 1
    assert statuses(store) == {
        **ALL_ACTIVE,
        "carol@corp.example.com": "bounced",
        "erin@example.com": "unsubscribed",
    }


def test_postmark_without_the_right_secret_changes_nothing(hooks: Webhooks, store: Store) -> None:
    body = json.dumps(payload("postmark-bounce.json")).encode()
    assert hooks.handle("postmark", body=body, headers={}).status == 401
    assert hooks.handle("postmark", body=body, headers={}, path_secret="guess").status == 403
    wrong = _basic("postmark", "not-the-secret")
    assert hooks.handle("postmark", body=body, headers=wrong).status == 401
    wrong_user = _basic("someone", POSTMARK_SECRET)
    assert hooks.handle("postmark", body=body, headers=wrong_user).status == 401
    assert statuses(store) == ALL_ACTIVE and _events(store) == 0


def test_an_unconfigured_relay_is_not_found(store: Store, sns: FakeSns) -> None:
    hooks = Webhooks(store, VERP_POLICY, WebhookSettings(), sns=sns.verifier(), clock=lambda: NOW)
    body = json.dumps(payload("postmark-bounce.json")).encode()
    for provider in ("ses", "mailgun", "postmark", "sendgrid"):
        assert hooks.handle(provider, body=body, headers={}, path_secret="").status == 404
    assert statuses(store) == ALL_ACTIVE


def test_refusals_never_echo_a_secret(hooks: Webhooks) -> None:
    body = json.dumps(payload("postmark-bounce.json")).encode()
    answers = [
        hooks.handle("postmark", body=body, headers={}, path_secret=POSTMARK_SECRET[:-1]),
        hooks.handle(
            "mailgun",
            body=json.dumps(_mailgun("mailgun-failed.json", key="k")).encode(),
            headers={},
        ),
    ]
    for answer in answers:
        assert POSTMARK_SECRET[:-1] not in answer.text and MAILGUN_KEY not in answer.text


# --- SendGrid (signed Event Webhook) ---


def _sendgrid_key() -> tuple[ec.EllipticCurvePrivateKey, str]:
    key = ec.generate_private_key(ec.SECP256R1())
    der = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return key, base64.b64encode(der).decode()


def _sendgrid_headers(key: ec.EllipticCurvePrivateKey, body: bytes, at: float) -> dict[str, str]:
    timestamp = str(int(at))
    signature = key.sign(timestamp.encode() + body, ec.ECDSA(hashes.SHA256()))
    return {
        "X-Twilio-Email-Event-Webhook-Signature": base64.b64encode(signature).decode(),
        "X-Twilio-Email-Event-Webhook-Timestamp": timestamp,
    }


def test_signed_sendgrid_events_act_and_bad_ones_change_nothing(store: Store) -> None:
    add_subscribers(store, ["dan@example.org", "ivy@example.com"])
    key, public = _sendgrid_key()
    hooks = Webhooks(
        store, VERP_POLICY, WebhookSettings(sendgrid_public_key=public), clock=lambda: NOW
    )
    body = (SAMPLES / "sendgrid-events.json").read_bytes()
    everyone = {**ALL_ACTIVE, "dan@example.org": "active", "ivy@example.com": "active"}
    stranger, _ = _sendgrid_key()
    for headers, status in (
        ({}, 401),
        (_sendgrid_headers(stranger, body, NOW.timestamp()), 403),
        (_sendgrid_headers(key, body + b" ", NOW.timestamp()), 403),
        (_sendgrid_headers(key, body, NOW.timestamp() - 600), 403),
    ):
        assert hooks.handle("sendgrid", body=body, headers=headers).status == status
        assert statuses(store) == everyone
    answer = hooks.handle(
        "sendgrid", body=body, headers=_sendgrid_headers(key, body, NOW.timestamp())
    )
    assert json.loads(answer.text) == {
        "read": 3,
        "hard": 1,
        "soft": 0,
        "complaints": 1,
        "unmatched": 0,
        "ignored": 1,
        "duplicates": 0,
    }
    assert statuses(store) == {
        **everyone,
        "dan@example.org": "bounced",
        "erin@example.com": "unsubscribed",
    }


# --- what an outside review sent (issue: hardened, round two) ---


def test_a_signed_timestamp_of_nan_is_refused(hooks: Webhooks, store: Store) -> None:
    for stamp in ("nan", "NaN", "inf", "1e9", "²"):
        data = payload("mailgun-failed.json")
        token = hashlib.sha256(stamp.encode()).hexdigest()[:50]
        mac = hmac.new(MAILGUN_KEY.encode(), (stamp + token).encode(), hashlib.sha256)
        data["signature"] = {"timestamp": stamp, "token": token, "signature": mac.hexdigest()}
        answer = _post_mailgun(hooks, data)
        assert (answer.status, "is not a number" in answer.text) == (403, True), answer
    key, public = _sendgrid_key()
    sendgrid = Webhooks(
        store, VERP_POLICY, WebhookSettings(sendgrid_public_key=public), clock=lambda: NOW
    )
    body = (SAMPLES / "sendgrid-events.json").read_bytes()
    headers = _sendgrid_headers(key, body, NOW.timestamp())
    signature = key.sign(b"nan" + body, ec.ECDSA(hashes.SHA256()))
    headers["X-Twilio-Email-Event-Webhook-Timestamp"] = "nan"
    headers["X-Twilio-Email-Event-Webhook-Signature"] = base64.b64encode(signature).decode()
    assert sendgrid.handle("sendgrid", body=body, headers=headers).status == 403
    assert statuses(store) == ALL_ACTIVE and _events(store) == 0


def test_a_deeply_nested_json_body_is_a_400(hooks: Webhooks, store: Store) -> None:
    nested = b"[" * 200_000 + b"]" * 200_000  # 400 KB, deeper than any parser's stack
    for provider in ("mailgun", "ses", "postmark"):
        answer = hooks.handle(provider, body=nested, headers={}, path_secret=POSTMARK_SECRET)
        assert (answer.status, "not JSON" in answer.text) == (400, True), answer
    inner = {"Type": "Notification", "Message": "[" * 100_000 + "]" * 100_000}
    assert _ses(hooks, inner).status == 400
    assert statuses(store) == ALL_ACTIVE


def test_an_sns_certificate_url_is_checked_before_any_fetch(
    hooks: Webhooks, store: Store, sns: FakeSns
) -> None:
    message = json.dumps(payload("ses-bounce.json"))
    before = len(sns.requests)
    for url in (
        f"https://{SNS_HOST}:99999{CERT_PATH}",
        f"https://{SNS_HOST}:x{CERT_PATH}",
        f"https://{SNS_HOST}/SimpleNotificationService-0.pem",
        f"https://{SNS_HOST}/any/path/at/all.pem",
        f"https://{SNS_HOST}{CERT_PATH}?Action=Publish",
        f"https://user@{SNS_HOST}{CERT_PATH}",
        f"https://sns.evil-label.amazonaws.com{CERT_PATH}",
    ):
        call = sns.message("Notification", message, timestamp=NOW, cert_url=url)
        answer = _ses(hooks, call)
        assert answer.status == 403, (url, answer)
    unsigned = {**sns.message("Notification", message, timestamp=NOW), "Signature": "AAAA"}
    assert _ses(hooks, unsigned).status == 403  # not an RSA signature's length
    assert len(sns.requests) == before  # nothing was fetched
    assert statuses(store) == ALL_ACTIVE


def test_sns_certificate_fetches_are_cached_and_limited(hooks: Webhooks, sns: FakeSns) -> None:
    message = json.dumps(payload("ses-bounce.json"))
    before = len(sns.requests)
    answers = []
    for number in range(40):
        url = f"https://{SNS_HOST}/SimpleNotificationService-{number:032x}.pem"
        answers.append(
            _ses(hooks, sns.message("Notification", message, timestamp=NOW, cert_url=url))
        )
    # Ten fetches (each answered with no certificate) in the minute, then 503: SNS retries.
    assert [a.status for a in answers] == [502] * 10 + [503] * 30
    assert len(sns.requests) == before + 10
    # A URL that failed is not fetched again for a while.
    url = f"https://{SNS_HOST}/SimpleNotificationService-{0:032x}.pem"
    again = _ses(hooks, sns.message("Notification", message, timestamp=NOW, cert_url=url))
    assert again.status == 502 and len(sns.requests) == before + 10
