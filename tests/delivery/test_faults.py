"""Faults: a sender killed with SIGKILL mid-run, two senders at once, a dropped connection."""

from __future__ import annotations

import re
import signal
from collections import Counter
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session

from digest.delivery.run import send_digest
from digest.errors import SmtpConnectError
from digest.store.runs import history
from tests.conftest import RecordingHandler, SmtpServer, free_port, serving
from tests.helpers.processes import make_busy_site, people, start_send, wait_for
from tests.helpers.site_fixtures import AS_OF, add_subscribers, make_site

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("window", [1, 16])
def test_sigkill_mid_run_then_rerun_delivers_everyone_with_few_duplicates(
    tmp_path: Path, migrated_database_url: str, slow_server: SmtpServer, window: int
) -> None:
    n, conns = 150, 3
    site = make_busy_site(
        tmp_path, migrated_database_url, slow_server.port, n, conns, mark_window=window
    )
    handler = slow_server.handler

    proc = start_send(site)
    try:
        wait_for(lambda: len(handler.messages) >= 30)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.communicate(timeout=10)  # reaps it and closes its pipes
    assert proc.returncode == -signal.SIGKILL
    arrived_before = len(handler.messages)
    assert arrived_before < n, "the sender finished before it could be killed"

    handler.delay = 0  # type: ignore[attr-defined]  # it slowed the first sender to kill it
    rerun = start_send(site)
    out, err = rerun.communicate(timeout=120)
    assert rerun.returncode == 0, err
    assert "finished run 1" in out
    found = re.search(
        r"^(\d+) deliver(?:y was|ies were) in flight when a previous sender stopped "
        r"and (?:was|were) sent again",
        out,
        re.MULTILINE,
    )
    assert found, out
    in_flight = int(found.group(1))
    # The documented bound: per connection, the messages of one window (delivery.mark_window).
    assert 1 <= in_flight <= conns * window

    received = Counter(r.lower() for m in handler.messages for r in m.rcpt_tos)
    for email, _ in people(n):
        assert received[email] >= 1, email
    duplicates = sum(c - 1 for c in received.values())
    assert duplicates <= in_flight, received.most_common(5)

    store = site.store()
    with store.session() as session:
        (run,) = history(session)
    assert (run.sent, run.pending, run.status) == (n, 0, "finished")
    store.dispose()


def test_two_sender_processes_started_together_send_each_message_once(
    tmp_path: Path, migrated_database_url: str, slow_server: SmtpServer
) -> None:
    n = 90
    site = make_busy_site(tmp_path, migrated_database_url, slow_server.port, n, 3)
    procs = [start_send(site), start_send(site)]
    outputs = [p.communicate(timeout=120) for p in procs]
    for p, (_out, err) in zip(procs, outputs, strict=True):
        assert p.returncode == 0, err
    received = Counter(r.lower() for m in slow_server.handler.messages for r in m.rcpt_tos)
    assert len(received) == n
    assert set(received.values()) == {1}
    store = site.store()
    with store.session() as session:
        runs = history(session)
    assert len(runs) == 1 and runs[0].sent == n
    store.dispose()


class DroppingHandler(RecordingHandler):
    """Drops the connection once, after `after` messages: the sender must carry on."""

    after: int = 3
    dropped: bool = False

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        if not self.dropped and len(self.messages) >= self.after:
            self.dropped = True
            assert server.transport is not None
            server.transport.close()
            return "421 closing"
        return await super().handle_DATA(server, session, envelope)


def test_connection_dropped_mid_run_is_retried(tmp_path: Path, migrated_database_url: str) -> None:
    handler = DroppingHandler()
    with serving(handler) as server:
        site = make_site(tmp_path / "site", migrated_database_url, server.port, max_connections=1)
        site.add_post("Hello")
        store = site.store()
        add_subscribers(store, [(f"d{i}@example.com", []) for i in range(8)])
        (report,) = send_digest(site.settings(), store, "weekly", as_of=AS_OF)
        store.dispose()
    assert handler.dropped
    assert (report.sent, report.pending, report.status) == (8, 0, "finished")
    received = Counter(r.lower() for m in handler.messages for r in m.rcpt_tos)
    assert set(received.values()) == {1} and len(received) == 8


def test_stop_event_leaves_the_rest_pending_for_the_next_send(
    tmp_path: Path, migrated_database_url: str, slow_server: SmtpServer
) -> None:
    import threading

    site = make_busy_site(tmp_path, migrated_database_url, slow_server.port, 60, 2)
    stop = threading.Event()
    store = site.store()

    def progress(done: int, total: int) -> None:
        if done >= 10:
            stop.set()

    (first,) = send_digest(
        site.settings(), store, "weekly", as_of=AS_OF, progress=progress, stop=stop
    )
    assert first.pending > 0 and first.status == "sending" and first.resent == 0
    assert first.sent == len(slow_server.handler.messages)
    second, _ = send_digest(site.settings(), store, "weekly", as_of=AS_OF)
    assert (second.sent, second.pending, second.resent) == (60, 0, 0)
    received = Counter(r.lower() for m in slow_server.handler.messages for r in m.rcpt_tos)
    assert len(received) == 60 and set(received.values()) == {1}
    store.dispose()


def test_server_going_down_mid_run_gives_up_the_pass_then_resumes(
    tmp_path: Path, migrated_database_url: str
) -> None:
    handler = RecordingHandler()
    port = free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port, decode_data=False)
    controller.start()
    site = make_site(tmp_path / "site", migrated_database_url, port, max_connections=1)
    site.add_post("Hello")
    store = site.store()
    add_subscribers(store, [(f"m{i:02d}@example.com", []) for i in range(20)])

    def progress(done: int, total: int) -> None:
        if done == 5 and controller.loop.is_running():
            controller.stop()  # the server goes away and stays away

    with pytest.raises(SmtpConnectError) as caught:
        send_digest(site.settings(), store, "weekly", as_of=AS_OF, progress=progress)
    assert f"127.0.0.1:{port}" in str(caught.value)
    assert "15 deliveries of run 1 left pending" in str(caught.value)
    with store.session() as session:
        (run,) = history(session)
    assert (run.sent, run.pending, run.status) == (5, 15, "sending")

    controller = Controller(handler, hostname="127.0.0.1", port=port, decode_data=False)
    controller.start()
    try:
        report, _ = send_digest(site.settings(), store, "weekly", as_of=AS_OF)
    finally:
        controller.stop()
    assert (report.sent, report.pending, report.status) == (20, 0, "finished")
    received = Counter(r.lower() for m in handler.messages for r in m.rcpt_tos)
    assert len(received) == 20 and set(received.values()) == {1}
    store.dispose()


def test_a_post_that_vanished_before_the_resume_is_left_out(
    tmp_path: Path, migrated_database_url: str, smtp_server: SmtpServer
) -> None:
    site = make_site(tmp_path / "site", migrated_database_url, smtp_server.port, max_attempts=1)
    keep = site.add_post("Keeper", categories=["Engineering"])
    gone = site.add_post("Goner", categories=["Culture"], days_ago=2)
    store = site.store()
    add_subscribers(
        store,
        [
            ("all@example.com", []),
            ("eng@example.com", ["Engineering"]),
            ("cult@example.com", ["Culture"]),
        ],
    )
    for address in ("all@example.com", "eng@example.com", "cult@example.com"):
        smtp_server.handler.transient[address] = 1  # greylisted once: the run stays open
    (first,) = send_digest(site.settings(), store, "weekly", as_of=AS_OF)
    assert (first.sent, first.pending) == (0, 3)

    (site.root / gone).unlink()
    report, _ = send_digest(site.settings(), store, "weekly", as_of=AS_OF)
    assert report.vanished_posts == [gone]
    # The Culture-only segment lost its only post: skipped, not sent empty.
    assert (report.sent, report.skipped, report.pending, report.status) == (2, 1, 0, "finished")
    (msg,) = smtp_server.handler.to("all@example.com")
    text = str(msg.message.get_body(("plain",)).get_content())  # type: ignore[union-attr]
    assert "Keeper" in text and "Goner" not in text
    assert smtp_server.handler.to("cult@example.com") == []
    assert keep in site.posts
    store.dispose()
