"""Playing by the relay's rules, with real sockets: a relay that answers as told (aiosmtpd),
real SQLite and PostgreSQL, `digest send` processes from two folders on one database."""

from __future__ import annotations

import json
import logging
import re
import threading
import time
from email import message_from_bytes, policy
from pathlib import Path
from typing import Any

import dkim
import pytest
import yaml
from click.testing import CliRunner
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519

from digest.cli import cli
from digest.delivery.limits import QuotaReached
from digest.delivery.run import send_digest
from digest.mail.dkim import load_dkim_signer
from digest.store import Store
from tests.helpers.processes import start_send
from tests.helpers.relay import Relay, Script, scripted_relay
from tests.helpers.site_fixtures import AS_OF, Site, add_subscribers, make_site


def relay_site(root: Path, database_url: str, relay: Relay, conns: int = 2, **smtp: Any) -> Site:
    site = make_site(
        root,
        database_url,
        relay.port,
        max_connections=conns,
        extra={"smtp": smtp} if smtp else None,
    )
    site.add_post("Rust Tips")
    return site


def subscribe(store: Store, people: list[str]) -> None:
    add_subscribers(store, [(p, []) for p in people])


def each_once(relay: Relay, people: list[str]) -> bool:
    arrived = sorted(a.to for a in relay.handler.arrivals)
    return arrived == sorted(people)


@pytest.mark.slow
def test_three_senders_from_two_folders_share_one_rate(
    tmp_path: Path, migrated_database_url: str
) -> None:
    people = [f"r{i:04d}@example.org" for i in range(600)]
    with scripted_relay() as relay:
        one = relay_site(tmp_path / "one", migrated_database_url, relay, rate_limit="200/s")
        two = relay_site(tmp_path / "two", migrated_database_url, relay, rate_limit="200/s")
        store = one.store()
        subscribe(store, people)
        store.dispose()
        senders = [start_send(one), start_send(two), start_send(one)]
        outcomes = [p.communicate(timeout=120) for p in senders]
        codes = [p.returncode for p in senders]
    assert codes == [0, 0, 0], outcomes
    assert each_once(relay, people)
    most = relay.handler.most_in_a_second()
    print(f"most in a second {most}, overall {relay.handler.rate():.1f}/s")
    assert most <= 200 + 2


def test_a_throttling_relay_slows_the_sender_and_nothing_fails(
    migrated_database_url: str, tmp_path: Path
) -> None:
    people = [f"r{i:04d}@example.org" for i in range(240)]
    began: list[float] = []

    def at_data(n: int) -> str | None:  # 454 to 3 DATA in 10 for the first second, then clean
        began.append(time.monotonic()) if not began else None
        throttling = time.monotonic() - began[0] < 1.0
        return "454 4.7.0 Throttling, slow down" if throttling and n % 10 in (1, 4, 7) else None

    with scripted_relay(Script(at_data=at_data)) as relay:
        site = relay_site(tmp_path / "site", migrated_database_url, relay, conns=4)
        store = site.store()
        subscribe(store, people)
        (report,) = send_digest(site.settings(), store, "weekly", as_of=AS_OF)
    assert (report.sent, report.failed, report.pending, report.resent) == (240, 0, 0, 0)
    assert each_once(relay, people)
    throttled = [r for r in relay.handler.replies if r.startswith("454")]
    assert throttled
    # Not a storm of retries (before: thousands of DATA in the throttled second).
    assert len(throttled) < 60
    start = began[0]
    during = relay.handler.rate(lambda _: True)
    print(
        f"454 replies {len(throttled)}; overall {during:.0f}/s; first second: "
        f"{sum(1 for a in relay.handler.arrivals if a.at - start < 1.0)} arrived"
    )


@pytest.mark.parametrize("max_per_connection", [0, 40])
def test_a_relay_closing_after_50_messages(
    tmp_path: Path, sqlite_url: str, max_per_connection: int
) -> None:
    people = [f"r{i:04d}@example.org" for i in range(180)]
    with scripted_relay(Script(close_after=50)) as relay:
        site = relay_site(
            tmp_path / "site",
            sqlite_url,
            relay,
            max_messages_per_connection=max_per_connection,
        )
        store = site.store()
        subscribe(store, people)
        store.dispose()
        result = CliRunner().invoke(
            cli,
            ["--config", str(site.config_path), "send", "weekly", "--as-of", AS_OF.isoformat()],
        )
    assert result.exit_code == 0, result.output
    assert "failed=0" in result.output or "0 failed" in result.output, result.output
    assert each_once(relay, people)
    if max_per_connection:
        assert relay.handler.closed == 0  # we said goodbye first, every 40
    else:
        assert relay.handler.closed >= 3


def test_a_slow_provider_does_not_hold_back_the_others(
    tmp_path: Path, migrated_database_url: str
) -> None:
    gmail = [f"g{i:04d}@gmail.com" for i in range(80)]
    others = [f"o{i:04d}@example.org" for i in range(80)]
    with scripted_relay() as relay:
        site = relay_site(
            tmp_path / "site",
            migrated_database_url,
            relay,
            conns=4,
            destination_limits={"google": "20/s"},
        )
        store = site.store()
        subscribe(store, [p for pair in zip(gmail, others, strict=True) for p in pair])
        (report,) = send_digest(site.settings(), store, "weekly", as_of=AS_OF)
    assert (report.sent, report.failed, report.pending) == (160, 0, 0)
    assert each_once(relay, gmail + others)
    to_gmail = sorted(a.at for a in relay.handler.arrivals if a.to.endswith("@gmail.com"))
    to_others = sorted(a.at for a in relay.handler.arrivals if a.to.endswith("@example.org"))
    # "a message or two" of slack: arrival times at the relay jitter on a busy machine
    assert relay.handler.most_in_a_second(lambda to: to.endswith("@gmail.com")) <= 20 + 2
    assert to_others[-1] < to_gmail[len(to_gmail) // 2]  # the others done long before gmail
    print(
        f"example.org {relay.handler.rate(lambda t: t.endswith('.org')):.0f}/s, "
        f"gmail {relay.handler.rate(lambda t: t.endswith('gmail.com')):.1f}/s"
    )


def send_to_a_full_limit(site: Site, people: list[str]) -> tuple[QuotaReached, Any]:
    """A send that runs into a used-up limit (QuotaReached), then `digest send` again at once:
    (what the first raised, the second's CLI result)."""
    store = site.store()
    subscribe(store, people)
    with pytest.raises(QuotaReached) as caught:
        send_digest(site.settings(), store, "weekly", as_of=AS_OF)
    again = CliRunner().invoke(
        cli, ["--config", str(site.config_path), "send", "weekly", "--as-of", AS_OF.isoformat()]
    )
    return caught.value, again


def test_a_per_day_limit_leaves_the_rest_pending_and_says_when(
    tmp_path: Path, migrated_database_url: str
) -> None:
    people = [f"r{i:04d}@example.org" for i in range(50)]
    with scripted_relay() as relay:
        site = relay_site(tmp_path / "site", migrated_database_url, relay, rate_limit="30/day")
        caught, result = send_to_a_full_limit(site, people)
    assert "smtp.rate_limit 30/day reached; sending resumes at" in caught.message
    assert "20 deliveries of run 1 left pending until then" in caught.message
    assert relay.handler.accepted == 30
    assert result.exit_code == 1
    assert "30/day reached; sending resumes at" in result.output
    assert "Traceback" not in result.output


def test_a_destinations_per_day_limit_is_never_over_run(
    tmp_path: Path, migrated_database_url: str
) -> None:
    """5/day to example.org, over two connections and two sends: five go, the rest wait for
    the limit (the other destination is not held back), and the command says until when."""
    people = [f"r{i:04d}@example.org" for i in range(12)] + [f"o{i}@other.net" for i in range(6)]
    with scripted_relay() as relay:
        site = relay_site(
            tmp_path / "site",
            migrated_database_url,
            relay,
            destination_limits={"example.org": "5/day"},
        )
        caught, again = send_to_a_full_limit(site, people)
    arrived = [a.to for a in relay.handler.arrivals]
    assert len([a for a in arrived if a.endswith("@example.org")]) == 5
    assert sorted(a for a in arrived if a.endswith("@other.net")) == people[12:]
    assert len(arrived) == len(set(arrived))
    message = caught.message
    assert "smtp.destination_limits used up: example.org (5/day) until" in message, message
    assert "7 deliveries of run 1 left pending until then" in message, message
    assert again.exit_code == 1, again.output
    assert "example.org (5/day) until" in again.output
    assert "Traceback" not in again.output


def test_feedback_id_is_filled_in_and_dkim_signed(tmp_path: Path, migrated_sqlite_url: str) -> None:
    key = ed25519.Ed25519PrivateKey.generate()
    key_file = tmp_path / "dkim.pem"
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    email = {
        "feedback_id": "{digest}:{run}:newsletter:testblog",
        "dkim": {"domain": "example.com", "selector": "news", "private_key_file": str(key_file)},
    }
    with scripted_relay() as relay:
        site = make_site(tmp_path / "site", migrated_sqlite_url, relay.port, extra={"email": email})
        site.add_post("Rust Tips")
        store = site.store()
        subscribe(store, ["ann@example.org"])
        (report,) = send_digest(site.settings(), store, "weekly", as_of=AS_OF)
    (arrival,) = relay.handler.arrivals
    message = message_from_bytes(arrival.data, policy=policy.default)
    assert message["Feedback-ID"] == f"weekly:{report.run_id}:newsletter:testblog"
    record = load_dkim_signer("example.com", "news", key_file).dns_record.encode()
    assert dkim.verify(arrival.data, dnsfunc=lambda name, timeout=5: record)
    signature = re.sub(r"\s+", "", str(message["DKIM-Signature"]))
    assert "feedback-id" in dict(t.split("=", 1) for t in signature.split(";") if t)["h"].split(":")
    tampered = arrival.data.replace(b"Feedback-ID: weekly", b"Feedback-ID: other", 1)
    assert not dkim.verify(tampered, dnsfunc=lambda name, timeout=5: record)


def test_history_counts_messages_per_relay(tmp_path: Path, migrated_database_url: str) -> None:
    with scripted_relay() as relay:
        site = make_site(
            tmp_path / "site",
            migrated_database_url,
            relay.port,
            extra={"smtp": {"name": "primary"}},
        )
        site.add_post("Rust Tips")
        store = site.store()
        subscribe(store, ["ann@example.org", "bob@example.org"])
        send_digest(site.settings(), store, "weekly", as_of=AS_OF)
        result = CliRunner().invoke(
            cli, ["--config", str(site.config_path), "history", "--format", "json"]
        )
    assert result.exit_code == 0, result.output
    (run,) = json.loads(result.output)
    assert run["relays"] == {"primary": 2}


def test_the_first_relay_stopped_mid_run_the_second_finishes_it(
    tmp_path: Path, migrated_database_url: str
) -> None:
    people = [f"r{i:04d}@example.org" for i in range(120)]
    with scripted_relay() as first, scripted_relay() as second:
        relays = [
            {"name": "primary", "host": "127.0.0.1", "port": first.port, "security": "none"},
            {"name": "backup", "host": "127.0.0.1", "port": second.port, "security": "none"},
        ]
        site = make_site(tmp_path / "site", migrated_database_url, first.port)
        config = yaml.safe_load(site.config_path.read_text())
        config["smtp"] = relays
        site.config_path.write_text(yaml.safe_dump(config))
        site.add_post("Rust Tips")
        store = site.store()
        subscribe(store, people)

        def stop_first() -> None:
            while first.handler.accepted < 40:
                time.sleep(0.005)
            first.stop()

        stopper = threading.Thread(target=stop_first)
        stopper.start()
        (report,) = send_digest(site.settings(), store, "weekly", as_of=AS_OF)
        stopper.join()
        result = CliRunner().invoke(
            cli, ["--config", str(site.config_path), "history", "--format", "json"]
        )
    assert (report.sent, report.failed, report.pending) == (120, 0, 0)
    arrived = [a.to for a in first.handler.arrivals + second.handler.arrivals]
    assert sorted(set(arrived)) == sorted(people)
    assert len(arrived) - len(people) <= report.resent  # a copy twice only if counted
    (run,) = json.loads(result.output)
    assert set(run["relays"]) == {"primary", "backup"}
    assert run["relays"]["primary"] >= 40 and sum(run["relays"].values()) == 120


def two_relay_site(
    root: Path, database_url: str, first: Relay, second: Relay, **first_keys: Any
) -> Site:
    relays = [
        {"name": "primary", "host": "127.0.0.1", "port": first.port, "security": "none"},
        {"name": "backup", "host": "127.0.0.1", "port": second.port, "security": "none"},
    ]
    relays[0].update(first_keys)
    relays[1]["rate_limit"] = "40/s"  # a run that lasts a few seconds on the backup
    site = make_site(root, database_url, first.port)
    config = yaml.safe_load(site.config_path.read_text())
    config["smtp"] = relays
    site.config_path.write_text(yaml.safe_dump(config))
    site.add_post("Rust Tips")
    return site


def failback_send(
    root: Path, database_url: str, people: list[str], *, first_back_after: int | None
) -> tuple[Any, Relay, Relay, list[str], dict[str, int]]:
    """A send through two relays whose first is down at the start (and up again once the
    backup took `first_back_after` messages, if given): (report, first, second, the
    sending module's warnings, history's relays)."""
    with scripted_relay() as first, scripted_relay() as second:
        first.stop()
        site = two_relay_site(root, database_url, first, second, failback_after="1s")
        store = site.store()
        subscribe(store, people)

        def restart_first() -> None:
            while second.handler.accepted < (first_back_after or 0):
                time.sleep(0.005)
            first.start()

        starter = threading.Thread(target=restart_first)
        if first_back_after is not None:
            starter.start()
        handler = ListHandler()
        logger = logging.getLogger("digest.delivery.sending")
        logger.addHandler(handler)
        try:
            (report,) = send_digest(site.settings(), store, "weekly", as_of=AS_OF)
        finally:
            logger.removeHandler(handler)
        if first_back_after is not None:
            starter.join()
        result = CliRunner().invoke(
            cli, ["--config", str(site.config_path), "history", "--format", "json"]
        )
    (run,) = json.loads(result.output)
    return report, first, second, handler.messages, run["relays"]


class ListHandler(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


def test_a_run_goes_back_to_the_first_relay_once_it_answers_again(
    tmp_path: Path, migrated_database_url: str
) -> None:
    people = [f"f{i:04d}@example.org" for i in range(120)]
    report, first, second, messages, relays = failback_send(
        tmp_path / "site", migrated_database_url, people, first_back_after=10
    )
    assert (report.sent, report.failed, report.pending) == (120, 0, 0)
    arrived = [a.to for a in first.handler.arrivals + second.handler.arrivals]
    assert sorted(arrived) == sorted(people)  # each once, over both relays
    assert relays["primary"] > 0 and relays["backup"] >= 10
    assert sum(relays.values()) == 120
    assert any("trying relay primary again" in m for m in messages)


def test_a_first_relay_still_down_is_tried_again_and_the_backup_finishes(
    tmp_path: Path, migrated_database_url: str
) -> None:
    people = [f"g{i:04d}@example.org" for i in range(120)]
    report, _first, second, messages, relays = failback_send(
        tmp_path / "site", migrated_database_url, people, first_back_after=None
    )
    assert (report.sent, report.failed, report.pending) == (120, 0, 0)
    assert sorted(a.to for a in second.handler.arrivals) == sorted(people)
    assert relays == {"backup": 120}
    tries = [m for m in messages if "trying relay primary again" in m]
    assert len(tries) >= 1, messages
    # Each try found it down at once and went on through the backup again.
    assert sum("going on through relay backup" in m for m in messages) == len(tries) + 1
