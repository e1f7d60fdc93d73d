"""One SMTP transaction for runs, test sends and the web mailer: the same relay misbehaving the
same way gives the same outcome on each path (a real relay answering as told, real SQLite)."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from digest.delivery.run import send_digest, send_test
from digest.errors import SmtpError
from digest.store import Store
from digest.store.models import C_FAILED, C_QUEUED, C_SENT, Confirmation, Subscriber
from tests.helpers.relay import HANG, Relay, Script, scripted_relay
from tests.helpers.site_fixtures import AS_OF, Site, add_subscribers, make_site
from tests.helpers.web_client import Client

GONE = "gone@example.org"
REFUSAL = "550 5.1.1 No such user"
CLOSING = "421 4.7.0 Try again later, closing connection"


def site_for(tmp_path: Path, relay: Relay, **smtp: Any) -> Site:
    site = make_site(
        tmp_path / "site",
        f"sqlite:///{tmp_path / 'digest.db'}",
        relay.port,
        max_connections=1,
        extra={"smtp": smtp} if smtp else None,
    )
    site.add_post("Rust Tips")
    return site


def run(site: Site, people: list[str]) -> Any:
    store = site.store()
    add_subscribers(store, [(p, []) for p in people])
    (report,) = send_digest(site.settings(), store, "weekly", as_of=AS_OF)
    return report


def sign_up(site: Site, people: list[str]) -> tuple[Client, Store]:
    store = site.store()
    client = Client.of(site.settings(), store)
    for person in people:
        assert client.post_form("/subscribe", {"email": person}).status == 202
    return client, store


def mail_states(store: Store) -> dict[str, str]:
    with store.session() as session:
        rows = session.query(Confirmation, Subscriber.email).join(Subscriber).all()
        return {email: row.status for row, email in rows}


# --- a 354 after a refused recipient: the message goes to nobody, only the final dot is sent ---


def refusing_354() -> Script:
    return Script(refuse_rcpt={GONE: REFUSAL}, data_despite_refusal=True)


def test_run_354_after_a_refusal(tmp_path: Path) -> None:
    with scripted_relay(refusing_354()) as relay:
        report = run(site_for(tmp_path, relay), ["a@example.org", GONE, "b@example.org"])
    assert (report.sent, report.failed, report.pending, report.resent) == (2, 1, 0, 0)
    assert relay.handler.bodies_after_refusal == [b""]
    assert sorted(a.to for a in relay.handler.arrivals) == ["a@example.org", "b@example.org"]


def test_send_test_354_after_a_refusal(tmp_path: Path) -> None:
    with scripted_relay(refusing_354()) as relay:
        site = site_for(tmp_path, relay)
        with pytest.raises(SmtpError, match=f"refused {GONE}: {REFUSAL}$"):
            send_test(site.settings(), site.store(), "weekly", GONE, as_of=AS_OF)
        send_test(site.settings(), site.store(), "weekly", "me@example.org", as_of=AS_OF)
    assert relay.handler.bodies_after_refusal == [b""]
    assert [a.to for a in relay.handler.arrivals] == ["me@example.org"]


def test_web_mailer_354_after_a_refusal(tmp_path: Path) -> None:
    with scripted_relay(refusing_354()) as relay:
        client, store = sign_up(site_for(tmp_path, relay), [GONE, "new@example.org"])
        client.send_queued()
    assert mail_states(store) == {GONE: C_FAILED, "new@example.org": C_SENT}
    assert relay.handler.bodies_after_refusal == [b""]
    assert [a.to for a in relay.handler.arrivals] == ["new@example.org"]


# --- a 421 mid-session: the relay did not take that message; sent again, once, no failure ---


def closing_at_second_dot() -> Script:
    return Script(at_dot=lambda n: CLOSING if n == 2 else None)


def test_run_421_mid_session(tmp_path: Path) -> None:
    people = [f"r{i}@example.org" for i in range(5)]
    with scripted_relay(closing_at_second_dot()) as relay:
        report = run(site_for(tmp_path, relay), people)
    assert (report.sent, report.failed, report.pending, report.resent) == (5, 0, 0, 0)
    assert sorted(a.to for a in relay.handler.arrivals) == people
    assert relay.handler.replies == [CLOSING]


def test_send_test_421_mid_session(tmp_path: Path) -> None:
    with scripted_relay(closing_at_second_dot()) as relay:
        site = site_for(tmp_path, relay)
        for _ in range(2):
            send_test(site.settings(), site.store(), "weekly", "me@example.org", as_of=AS_OF)
    assert [a.to for a in relay.handler.arrivals] == ["me@example.org"] * 2
    assert relay.handler.replies == [CLOSING]


def test_web_mailer_421_mid_session(tmp_path: Path) -> None:
    people = ["one@example.org", "two@example.org", "three@example.org"]
    with scripted_relay(closing_at_second_dot()) as relay:
        client, store = sign_up(site_for(tmp_path, relay), people)
        client.send_queued()
    assert mail_states(store) == dict.fromkeys(people, C_SENT)
    assert sorted(a.to for a in relay.handler.arrivals) == sorted(people)
    assert relay.handler.replies == [CLOSING]


# --- no answer after the final dot: the only case that may count as a possible re-send ---


def hanging_at_second_dot() -> Script:
    return Script(at_dot=lambda n: HANG if n == 2 else None, hang=2.0)


def test_run_timeout_after_the_final_dot(tmp_path: Path) -> None:
    people = [f"r{i}@example.org" for i in range(4)]
    with scripted_relay(hanging_at_second_dot()) as relay:
        report = run(site_for(tmp_path, relay, timeout=0.5), people)
    assert (report.sent, report.failed, report.pending, report.resent) == (4, 0, 0, 1)
    arrived = sorted(a.to for a in relay.handler.arrivals)
    assert arrived == sorted([*people, "r1@example.org"])  # the unanswered one, counted


def test_send_test_timeout_after_the_final_dot(tmp_path: Path) -> None:
    with scripted_relay(Script(at_dot=lambda n: HANG if n == 1 else None)) as relay:
        site = site_for(tmp_path, relay, timeout=0.5)
        with pytest.raises(SmtpError, match="no answer after the final dot, the message may"):
            send_test(site.settings(), site.store(), "weekly", "me@example.org", as_of=AS_OF)
    assert [a.to for a in relay.handler.arrivals] == ["me@example.org"]  # not sent again


def test_web_mailer_timeout_after_the_final_dot(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with scripted_relay(Script(at_dot=lambda n: HANG if n == 1 else None)) as relay:
        client, store = sign_up(site_for(tmp_path, relay, timeout=0.5), ["new@example.org"])
        with caplog.at_level(logging.ERROR, logger="digest.web"):
            client.send_queued()
        assert "no answer after the final dot, the message may have arrived" in caplog.text
        assert mail_states(store) == {"new@example.org": C_QUEUED}  # tried again later
        assert len(relay.handler.arrivals) == 1
        later = datetime.now(UTC) + timedelta(hours=2)
        assert client.app.mailer.run_once(now=later) == 1
    assert mail_states(store) == {"new@example.org": C_SENT}
    assert len(relay.handler.arrivals) == 2
