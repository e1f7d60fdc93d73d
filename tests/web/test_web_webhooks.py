"""POST /webhooks/<provider> in `digest serve`: the app hands signed calls to the bounce side."""

from __future__ import annotations

import base64
import hashlib
import hmac
import io
import json
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from wsgiref.util import setup_testing_defaults

import pytest

from digest.config import load_settings
from digest.store import Store
from digest.web import make_app
from digest.web.routes import DigestWebApp
from tests.helpers.bounce_fixtures import add_subscribers, statuses
from tests.helpers.sns_fixtures import TOPIC, FakeSns, running_fake_sns, sns_body

SAMPLES = Path(__file__).parents[1] / "webhook_samples"
MAILGUN_KEY = "key-web-mailgun-0123456789"
POSTMARK_SECRET = "pm-secret-in-url-0123456789"
SECRET = "web-webhook-secret-0123456789"


@dataclass
class Answer:
    status: int
    text: str


def call(
    app: DigestWebApp, path: str, body: bytes, headers: dict[str, str] | None = None
) -> Answer:
    environ: dict[str, Any] = {}
    setup_testing_defaults(environ)
    environ.update(
        REQUEST_METHOD="POST",
        PATH_INFO=path,
        CONTENT_LENGTH=str(len(body)),
        CONTENT_TYPE="application/json",
    )
    for name, value in (headers or {}).items():
        environ["HTTP_" + name.upper().replace("-", "_")] = value
    environ["wsgi.input"] = io.BytesIO(body)
    seen: dict[str, str] = {}

    def start_response(status: str, headers: list[tuple[str, str]], exc: object = None) -> None:
        seen["status"] = status

    data = b"".join(app(environ, start_response))
    return Answer(int(seen["status"].split()[0]), data.decode())


@pytest.fixture(scope="module")
def sns(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FakeSns]:
    with running_fake_sns(tmp_path_factory.mktemp("sns")) as fake:
        yield fake


@pytest.fixture
def store(sqlite_store: Store) -> Store:
    add_subscribers(
        sqlite_store, ["alice@example.net", "bob@example.org", "carol@corp.example.com"]
    )
    return sqlite_store


def _app(tmp_path: Path, store: Store, sns: FakeSns, webhooks: str) -> DigestWebApp:
    (tmp_path / "_posts").mkdir(exist_ok=True)
    (tmp_path / "config.yaml").write_text(
        "site: {title: Blog, url: 'https://blog.example.com'}\n"
        "email: {from: 'Blog <news@example.com>', bounce_address: bounces@example.com}\n"
        f"web: {{base_url: 'https://news.example.com', secret: {SECRET}}}\n"
        f"database: {{url: '{store.url}'}}\n"
        f"bounces:\n  webhooks:\n{webhooks}",
        encoding="utf-8",
    )
    settings = load_settings(tmp_path / "config.yaml", environ={})
    return make_app(settings, store, sns=sns.verifier(), mailer_thread=False)


ALL = (
    f"    ses: {{topic_arns: ['{TOPIC}']}}\n"
    f"    mailgun: {{signing_key: {MAILGUN_KEY}}}\n"
    f"    postmark: {{secret: {POSTMARK_SECRET}}}\n"
)


def test_each_relay_acts_through_the_route(
    tmp_path: Path, store: Store, sns: FakeSns, caplog: pytest.LogCaptureFixture
) -> None:
    app = _app(tmp_path, store, sns, ALL)
    ses = json.loads((SAMPLES / "ses-bounce.json").read_text())
    # The app checks SNS and Mailgun timestamps against the real clock: sign them for now.
    message = sns.message("Notification", json.dumps(ses), timestamp=datetime.now(UTC))
    answer = call(app, "/webhooks/ses", sns_body(message))
    assert (answer.status, json.loads(answer.text)["hard"]) == (200, 1)

    mailgun = json.loads((SAMPLES / "mailgun-failed.json").read_text())
    timestamp, token = str(int(datetime.now(UTC).timestamp())), "t" * 50
    digest = hmac.new(MAILGUN_KEY.encode(), (timestamp + token).encode(), hashlib.sha256)
    mailgun["signature"] = {"timestamp": timestamp, "token": token, "signature": digest.hexdigest()}
    assert call(app, "/webhooks/mailgun", json.dumps(mailgun).encode()).status == 200

    postmark = (SAMPLES / "postmark-bounce.json").read_bytes()
    with caplog.at_level(logging.INFO, logger="digest.web.access"):
        assert call(app, f"/webhooks/postmark/{POSTMARK_SECRET}", postmark).status == 200
    assert statuses(store) == {
        "alice@example.net": "bounced",
        "bob@example.org": "bounced",
        "carol@corp.example.com": "bounced",
    }
    assert POSTMARK_SECRET not in caplog.text
    assert "/webhooks/postmark/***" in caplog.text


def test_refused_calls_change_nothing(tmp_path: Path, store: Store, sns: FakeSns) -> None:
    app = _app(tmp_path, store, sns, ALL)
    postmark = (SAMPLES / "postmark-bounce.json").read_bytes()
    assert call(app, "/webhooks/postmark", postmark).status == 401
    assert call(app, "/webhooks/postmark/wrong-secret", postmark).status == 403
    basic = base64.b64encode(b"x:wrong").decode()
    assert (
        call(app, "/webhooks/postmark", postmark, {"Authorization": f"Basic {basic}"}).status == 401
    )
    mailgun = (SAMPLES / "mailgun-failed.json").read_bytes()
    assert call(app, "/webhooks/mailgun", mailgun).status == 401
    ses = json.loads((SAMPLES / "ses-bounce.json").read_text())
    unsigned = {
        "Type": "Notification",
        "MessageId": "m",
        "TopicArn": TOPIC,
        "Timestamp": "2026-11-28T09:12:38.237Z",
        "Message": json.dumps(ses),
    }
    assert call(app, "/webhooks/ses", json.dumps(unsigned).encode()).status in (401, 403)
    assert set(statuses(store).values()) == {"active"}


def test_unconfigured_relays_and_bodies_too_large(
    tmp_path: Path, store: Store, sns: FakeSns
) -> None:
    app = _app(tmp_path, store, sns, f"    postmark: {{secret: {POSTMARK_SECRET}}}\n")
    assert call(app, "/webhooks/mailgun", b"{}").status == 404
    assert call(app, "/webhooks/nosuch", b"{}").status == 404
    big = b"{" + b" " * (2 * 1024 * 1024) + b"}"
    assert call(app, f"/webhooks/postmark/{POSTMARK_SECRET}", big).status == 413
    assert set(statuses(store).values()) == {"active"}


def test_without_any_relay_the_route_is_not_found(
    tmp_path: Path, store: Store, sns: FakeSns
) -> None:
    app = _app(tmp_path, store, sns, "    {}\n")
    postmark = (SAMPLES / "postmark-bounce.json").read_bytes()
    assert call(app, f"/webhooks/postmark/{POSTMARK_SECRET}", postmark).status == 404
