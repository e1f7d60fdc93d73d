"""A long wait says what it waits for and until when (a silent minute looks like a hang)."""

from __future__ import annotations

import signal
import subprocess
import threading
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session

from digest.delivery.run import send_digest
from digest.errors import SmtpConnectError
from digest.store.models import utcnow
from tests.conftest import RecordingHandler, free_port
from tests.helpers.processes import people, start_send
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


def test_a_send_resumed_after_an_outage_says_what_it_waits_for(
    tmp_path: Path, migrated_database_url: str
) -> None:
    n, backoff = 12, 30.0
    handler = OutageHandler()
    port = free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port, decode_data=False)
    controller.start()
    try:
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
        lines: list[str] = []
        seen = threading.Event()
        reader = threading.Thread(target=read_lines, args=(proc, lines, seen), daemon=True)
        reader.start()
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
    finally:
        controller.stop()
    (line,) = [x for x in lines if x.startswith("warning: waiting until")]
    assert "deferred (delivery.retry_backoff)" in line, line
    until = datetime.fromisoformat(line.split()[3])
    # Told as the wait began, not when it ended: most of the backoff is still ahead.
    assert (until - read_at).total_seconds() > backoff / 2, (line, read_at)
    assert "Traceback" not in "".join(lines)
