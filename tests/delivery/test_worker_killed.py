"""`digest send --workers 2` with one sender process killed outright (the OOM killer's way)."""

from __future__ import annotations

import json
import os
import re
import signal
from collections import Counter
from pathlib import Path

from click.testing import CliRunner

from digest.cli import cli
from tests.conftest import SmtpServer
from tests.helpers.processes import make_busy_site, start_send, wait_for


def children(pid: int) -> list[int]:
    """The live child processes of `pid` (Linux /proc)."""
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        found += [int(c) for c in (task / "children").read_text().split()]
    return found


def test_a_killed_worker_is_noticed_and_the_parent_finishes_the_run_by_itself(
    tmp_path: Path, migrated_database_url: str, slow_server: SmtpServer
) -> None:
    n, conns = 240, 2
    site = make_busy_site(tmp_path, migrated_database_url, slow_server.port, n, conns)
    handler = slow_server.handler
    proc = start_send(site, "--workers", "2")
    try:
        wait_for(lambda: len(handler.messages) >= 40 and children(proc.pid), timeout=60)
        (worker,) = children(proc.pid)
        os.kill(worker, signal.SIGKILL)
        handler.delay = 0  # type: ignore[attr-defined]  # it slowed the senders to kill one
        out, err = proc.communicate(timeout=120)  # the parent exits by itself
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert "Traceback" not in err, err
    assert re.search(rf"sender process {worker} .*killed by SIGKILL", err), err
    assert proc.returncode == 0, err
    assert f"{n} sent, 0 failed, 0 pending" in out, out

    received = Counter(r.lower() for m in handler.messages for r in m.rcpt_tos)
    assert len(received) == n
    duplicates = sum(c - 1 for c in received.values())
    result = CliRunner().invoke(
        cli, ["--config", str(site.config_path), "history", "--format", "json"]
    )
    (run,) = json.loads(result.output)
    # The killed process had one connection: at most its message on the wire went twice.
    assert duplicates <= run["possible_resends"] <= conns, (duplicates, run)


def test_sigterm_stops_a_send_whose_worker_was_killed(
    tmp_path: Path, migrated_database_url: str, slow_server: SmtpServer
) -> None:
    n = 240
    site = make_busy_site(tmp_path, migrated_database_url, slow_server.port, n, 2)
    handler = slow_server.handler
    proc = start_send(site, "--workers", "2")
    try:
        wait_for(lambda: len(handler.messages) >= 20 and children(proc.pid), timeout=60)
        (worker,) = children(proc.pid)
        os.kill(worker, signal.SIGKILL)
        proc.send_signal(signal.SIGTERM)
        _out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert "stopping after the messages on the wire" in err, err
    assert "Traceback" not in err, err
    assert proc.returncode == 1, err  # deliveries left pending
