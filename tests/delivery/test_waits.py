"""A long wait says what it waits for and until when (a silent minute looks like a hang)."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import threading
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import pytest
from aiosmtpd.smtp import SMTP, Envelope, Session

from digest.delivery.run import send_digest
from digest.errors import SmtpConnectError
from digest.store.models import utcnow
from tests.conftest import RecordingHandler, serving
from tests.helpers.processes import people, start_send, wait_for
from tests.helpers.site_fixtures import AS_OF, add_subscribers, make_site


@dataclass
class OutageHandler(RecordingHandler):
    """Takes `up_for` messages, then drops the connection at every final dot while `down`.

    (A 421 would be throttling: the relay answers, so the sender slows down and requeues
    instead of failing; a relay that goes away is what stops a send.)
    """

    up_for: int = 5
    down: bool = True

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        if self.down and len(self.messages) >= self.up_for:
            assert server.transport is not None
            server.transport.abort()  # gone without a word
            return "451 4.3.0 never seen"
        return await super().handle_DATA(server, session, envelope)


def read_lines(proc: subprocess.Popen[str], lines: list[str], seen: threading.Event) -> None:
    assert proc.stderr is not None
    for line in proc.stderr:
        lines.append(line)
        if line.startswith("warning: waiting until"):
            seen.set()


def watch(proc: subprocess.Popen[str]) -> tuple[list[str], threading.Event, threading.Thread]:
    """The process's stderr lines as they come, and an event set at its first wait line."""
    lines: list[str] = []
    seen = threading.Event()
    reader = threading.Thread(target=read_lines, args=(proc, lines, seen), daemon=True)
    reader.start()
    return lines, seen, reader


def test_a_send_resumed_after_an_outage_says_what_it_waits_for(
    tmp_path: Path, migrated_database_url: str
) -> None:
    n, backoff = 12, 30.0
    handler = OutageHandler()
    with serving(handler) as server:
        port = server.port
        site = make_site(
            tmp_path / "site",
            migrated_database_url,
            port,
            max_connections=1,
            retry_backoff=backoff,
        )
        site.add_post("Rust Tips", categories=["Engineering"])
        store = site.store()
        add_subscribers(store, people(n))
        with pytest.raises(SmtpConnectError):  # the relay went away mid-run
            send_digest(site.settings(), store, "weekly", as_of=AS_OF)
        store.dispose()

        handler.down = False  # back: the resumed send goes on, then waits out the backoff
        proc = start_send(site)
        lines, seen, reader = watch(proc)
        try:
            assert seen.wait(60), lines
            read_at = utcnow()
        finally:
            proc.send_signal(signal.SIGTERM)
            reader.join(timeout=60)  # stderr ends when the process does
            assert proc.stdout is not None and proc.stderr is not None
            proc.stdout.close()
            proc.stderr.close()
            proc.wait(timeout=60)
    (line,) = [x for x in lines if x.startswith("warning: waiting until")]
    assert "deferred (delivery.retry_backoff)" in line, line
    until = datetime.fromisoformat(line.split()[3])
    # Told as the wait began, not when it ended: most of the backoff is still ahead.
    assert (until - read_at).total_seconds() > backoff / 2, (line, read_at)
    assert "Traceback" not in "".join(lines)


@dataclass
class HoldingHandler(RecordingHandler):
    """Takes the first message, then holds every later one until `release` is set: a sender
    that keeps its claim on the run for as long as the test needs."""

    release: threading.Event = field(default_factory=threading.Event)

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        while self.messages and not self.release.is_set():
            await asyncio.sleep(0.05)
        return await super().handle_DATA(server, session, envelope)


def test_a_second_send_says_it_waits_for_the_sender_that_holds_the_run(
    tmp_path: Path, migrated_database_url: str
) -> None:
    """The take-over lease: a second `digest send` finds every delivery claimed by a live
    sender, says so within seconds, waits, and neither sends anything twice."""
    n = 9
    handler = HoldingHandler()
    with serving(handler) as server:
        site = make_site(tmp_path / "site", migrated_database_url, server.port, max_connections=1)
        site.add_post("Rust Tips", categories=["Engineering"])
        store = site.store()
        add_subscribers(store, people(n))
        store.dispose()
        first = start_send(site)
        wait_for(lambda: len(handler.messages) >= 1, timeout=60)  # it holds the claim now
        second = start_send(site)
        lines, seen, reader = watch(second)
        try:
            assert seen.wait(60), lines
            told_with = len(handler.messages)
            handler.release.set()
            assert first.wait(timeout=120) == 0
            assert second.wait(timeout=60) == 0
        finally:
            for proc in (first, second):
                if proc.poll() is None:
                    proc.kill()
                    proc.wait(timeout=30)
            reader.join(timeout=30)
            for proc in (first, second):
                assert proc.stdout is not None and proc.stderr is not None
                proc.stdout.close()
                proc.stderr.close()
    waits = [x for x in lines if x.startswith("warning: waiting until")]
    assert len(waits) == 1, lines
    assert "another sender holds" in waits[0], waits
    assert told_with == 1  # said while the first sender held the rest
    recipients = [r for m in handler.messages for r in m.rcpt_tos]
    expected = {email for email, categories in people(n) if categories != ["Culture"]}
    assert sorted(recipients) == sorted(expected)  # every one of them, none twice
    assert "Traceback" not in "".join(lines)
