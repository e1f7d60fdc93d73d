"""What a send promises under bad luck: unsubscribes honoured at once, re-sends counted, a
relay that hangs stops the run."""

from __future__ import annotations

import asyncio
import json
import re
import signal
import threading
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session
from click.testing import CliRunner
from sqlalchemy import update

from digest.cli import cli
from digest.delivery.connection import JOURNAL_WINDOW
from digest.delivery.run import send_digest
from digest.store import Store
from digest.store.models import ACTIVE, UNSUBSCRIBED, Subscriber
from digest.store.runs import history
from tests.conftest import RecordingHandler, SmtpServer, free_port
from tests.helpers.processes import make_busy_site, start_send, wait_for
from tests.helpers.site_fixtures import AS_OF, add_subscribers, make_site


@dataclass
class UnsubscribingHandler(RecordingHandler):
    """After `after` messages, commits an unsubscribe of every active subscriber, then answers."""

    after: int = 10
    store: Store | None = None
    started: bool = False
    cut: int = -1  # messages received when the unsubscribe committed

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        reply = await super().handle_DATA(server, session, envelope)
        with self.lock:
            due = not self.started and len(self.messages) >= self.after
            self.started = self.started or due
        if due:
            # On the event loop: every other session is frozen where it was at the commit.
            self.unsubscribe_everyone()
        return reply

    def unsubscribe_everyone(self) -> None:
        assert self.store is not None
        with self.store.write_transaction() as db:  # one commit for everyone
            db.execute(
                update(Subscriber)
                .where(Subscriber.status == ACTIVE)
                .values(status=UNSUBSCRIBED, status_reason="one-click")
            )
        with self.lock:
            self.cut = len(self.messages)


@contextmanager
def serving(handler: RecordingHandler) -> Iterator[SmtpServer]:
    port = free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port, decode_data=False)
    controller.start()
    try:
        yield SmtpServer("127.0.0.1", port, handler, controller)
    finally:
        controller.stop()


@pytest.mark.parametrize(("conns", "window"), [(1, 1), (2, 1), (2, 16)])
def test_an_unsubscribe_committed_mid_send_stops_mail_within_a_window_per_connection(
    tmp_path: Path, migrated_database_url: str, conns: int, window: int
) -> None:
    n = 120
    handler = UnsubscribingHandler()
    with serving(handler) as smtp:
        site = make_busy_site(
            tmp_path, migrated_database_url, smtp.port, n, conns, mark_window=window
        )
        store = site.store()
        handler.store = store
        (report,) = send_digest(site.settings(), store, "weekly", as_of=AS_OF)
        store.dispose()
    assert handler.cut >= handler.after
    late = len(handler.messages) - handler.cut
    # After the commit, each connection sends at most the messages whose status was read before
    # (read a window at a time with the sent marks: with a window of one, the journal's
    # JOURNAL_WINDOW). Another connection, frozen by the server at the commit, may also still
    # have a message whose final dot was on the wire before it: read after.
    reads = JOURNAL_WINDOW if window == 1 else window
    assert late <= reads * conns + conns - 1, late
    assert report.skipped == n - len(handler.messages)
    assert (report.pending, report.status) == (0, "finished")


class NoAnswerHandler(RecordingHandler):
    """Takes a message for `slow` but answers after the client has given up (once)."""

    slow: str = "u0005@example.com"
    delay: float = 1.5
    stalled: int = 0

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        reply = await super().handle_DATA(server, session, envelope)  # it has arrived
        if self.slow in (r.lower() for r in envelope.rcpt_tos) and not self.stalled:
            self.stalled += 1
            await asyncio.sleep(self.delay)
        return reply


def test_no_answer_after_the_final_dot_is_counted_as_a_possible_resend(
    tmp_path: Path, migrated_database_url: str
) -> None:
    n = 12
    handler = NoAnswerHandler()
    with serving(handler) as smtp:
        site = make_site(
            tmp_path / "site",
            migrated_database_url,
            smtp.port,
            max_connections=1,
            extra={"smtp": {"timeout": 0.5}},
        )
        site.add_post("Hello")
        store = site.store()
        add_subscribers(store, [(f"u{i:04d}@example.com", []) for i in range(n)])
        (report,) = send_digest(site.settings(), store, "weekly", as_of=AS_OF)
        with store.session() as session:
            (run,) = history(session)
        store.dispose()
    received = Counter(r.lower() for m in handler.messages for r in m.rcpt_tos)
    assert received[handler.slow] == 2  # the relay had it; we could not know, so sent it again
    duplicates = sum(c - 1 for c in received.values())
    assert report.resent == run.possible_resends == duplicates == 1
    assert run.as_dict()["possible_resends"] == 1
    assert (run.sent, run.pending) == (n, 0)


def test_possible_resends_add_up_over_every_killed_sender(
    tmp_path: Path, migrated_database_url: str, slow_server: SmtpServer
) -> None:
    n, conns = 150, 3
    site = make_busy_site(tmp_path, migrated_database_url, slow_server.port, n, conns)
    handler = slow_server.handler
    for goal in (25, 60):
        proc = start_send(site)
        try:
            wait_for(lambda goal=goal: len(handler.messages) >= goal)  # type: ignore[misc]
        finally:
            proc.send_signal(signal.SIGKILL)
            proc.communicate(timeout=10)  # reaps it and closes its pipes
    handler.delay = 0  # type: ignore[attr-defined]  # it slowed the senders to kill them
    final = start_send(site)
    out, err = final.communicate(timeout=120)
    assert final.returncode == 0, err
    received = Counter(r.lower() for m in handler.messages for r in m.rcpt_tos)
    assert len(received) == n
    duplicates = sum(c - 1 for c in received.values())

    result = CliRunner().invoke(
        cli, ["--config", str(site.config_path), "history", "--format", "json"]
    )
    assert result.exit_code == 0, result.output
    (run,) = json.loads(result.output)
    # Every copy that may be a duplicate is counted, whichever process sent it; by default (the
    # journal) at most the message on the wire per connection and kill.
    assert duplicates <= run["possible_resends"] <= 2 * conns
    assert run["possible_resends"] >= 2  # one kill each at least had a message in flight
    found = re.search(r"^(\d+) deliver", out, re.MULTILINE)
    assert found and int(found.group(1)) == run["possible_resends"], out


class HangingHandler(RecordingHandler):
    """Answers everything, then hangs after the final dot from the third message on."""

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        reply = await super().handle_DATA(server, session, envelope)
        if len(self.messages) > 2:
            await asyncio.sleep(3)
        return reply


def test_a_relay_that_hangs_trips_the_circuit_breaker(
    tmp_path: Path, migrated_database_url: str
) -> None:
    n = 30
    handler = HangingHandler()
    with serving(handler) as smtp:
        site = make_busy_site(tmp_path, migrated_database_url, smtp.port, n, 1)
        text = site.config_path.read_text("utf-8").replace("timeout: 10", "timeout: 0.3")
        site.config_path.write_text(text, "utf-8")
        result = CliRunner().invoke(
            cli,
            ["--config", str(site.config_path), "send", "weekly", "--as-of", AS_OF.isoformat()],
        )
    assert result.exit_code == 1, result.output
    lines = result.stderr.strip().splitlines()
    assert "Traceback" not in result.output
    assert re.match(
        rf"error: SMTP server 127\.0\.0\.1:{smtp.port} did not answer within smtp\.timeout "
        r"\(0\.3 s\) 3 times in a row \(smtp\.max_timeouts\): stopped; \d+ deliveries of run 1 "
        r"left pending$",
        lines[0],
    ), lines
    store = site.store()
    with store.session() as session:
        (run,) = history(session)
    store.dispose()
    assert run.sent == 2 and run.pending == n - 2 and run.status == "sending"
    # Two answered, then one message body per timeout; one sent again after its silent dot
    # (its backoff may pass before the next try) is counted as a possible re-send.
    received = Counter(r.lower() for m in handler.messages for r in m.rcpt_tos)
    assert sum(received.values()) == 2 + 3
    assert sum(received.values()) - len(received) == run.possible_resends


@pytest.fixture(autouse=True)
def _no_site_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DIGEST_CONFIG", raising=False)


# Two and four workers share the run on both databases (four, one connection each: the claims
# under the most contention).
@pytest.mark.parametrize(
    ("database", "workers"),
    [("sqlite", 2), ("sqlite", 4), ("postgresql", 2), ("postgresql", 4)],
    indirect=["database"],
)
def test_send_with_workers_sends_each_message_once(
    tmp_path: Path, migrated_database_url: str, slow_server: SmtpServer, workers: int
) -> None:
    n = 90
    site = make_busy_site(tmp_path, migrated_database_url, slow_server.port, n, 4)
    proc = start_send(site, "--workers", str(workers))
    out, err = proc.communicate(timeout=180)
    assert proc.returncode == 0, err
    assert f"{n} sent, 0 failed, 0 pending" in out, out
    received = Counter(r.lower() for m in slow_server.handler.messages for r in m.rcpt_tos)
    assert len(received) == n and set(received.values()) == {1}
    senders = {m.mail_from for m in slow_server.handler.messages}
    assert senders == {"news@example.com"}


@pytest.mark.parametrize("workers", [1, 2])
def test_ctrl_c_stops_a_send_after_the_messages_on_the_wire(
    tmp_path: Path, migrated_database_url: str, slow_server: SmtpServer, workers: int
) -> None:
    n = 600
    site = make_busy_site(tmp_path, migrated_database_url, slow_server.port, n, 4)
    handler = slow_server.handler
    proc = start_send(site, "--workers", str(workers))
    try:
        wait_for(lambda: len(handler.messages) >= 20, timeout=60)
    finally:
        proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 1, err  # deliveries left pending
    assert "stopping after the messages on the wire" in err, err
    assert "Traceback" not in err, err
    found = re.search(r" (\d+) sent, 0 failed, (\d+) pending", out)
    assert found, out
    sent, pending = int(found.group(1)), int(found.group(2))
    # Every message that reached the server was recorded as sent before the processes ended.
    with handler.lock:
        received = Counter(r.lower() for m in handler.messages for r in m.rcpt_tos)
    assert sum(received.values()) == len(received) == sent
    assert pending == n - sent > 0

    handler.delay = 0  # type: ignore[attr-defined]  # it slowed the sender to stop it mid-run
    final = start_send(site, "--workers", str(workers))
    out, err = final.communicate(timeout=180)
    assert final.returncode == 0, err
    received = Counter(r.lower() for m in handler.messages for r in m.rcpt_tos)
    assert len(received) == n and set(received.values()) == {1}
    result = CliRunner().invoke(
        cli, ["--config", str(site.config_path), "history", "--format", "json"]
    )
    (run,) = json.loads(result.output)
    assert run["possible_resends"] == 0  # nothing was in flight when it stopped


def test_workers_started_by_a_caller_with_threads_come_from_a_fork_server(
    tmp_path: Path, migrated_database_url: str
) -> None:
    n = 60
    handler = RecordingHandler()
    with serving(handler) as smtp:  # the server's thread: forking this process is not safe
        assert threading.active_count() > 1
        site = make_busy_site(tmp_path, migrated_database_url, smtp.port, n, 4)
        store = site.store()
        (report,) = send_digest(site.settings(), store, "weekly", as_of=AS_OF, workers=3)
        store.dispose()
    assert (report.sent, report.pending, report.status) == (n, 0, "finished")
    received = Counter(r.lower() for m in handler.messages for r in m.rcpt_tos)
    assert len(received) == n and set(received.values()) == {1}
