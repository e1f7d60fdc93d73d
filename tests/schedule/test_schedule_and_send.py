"""The scheduler and a manual `digest send` at the same moment never double-send."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

from digest.store.leases import save_fire_state
from digest.store.runs import history
from tests.conftest import SmtpServer
from tests.helpers.processes import people
from tests.helpers.site_fixtures import add_subscribers, make_site

ROOT = Path(__file__).resolve().parents[2]


def digest(*args: str) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DIGEST_")}
    return subprocess.Popen(
        [sys.executable, "-m", "digest", *args],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_a_scheduled_fire_and_a_manual_send_together_send_each_message_once(
    tmp_path: Path,
    migrated_database_url: str,
    slow_server: SmtpServer,
) -> None:
    n = 60
    now = datetime.now(UTC).replace(microsecond=0)
    site = make_site(
        tmp_path / "site",
        migrated_database_url,
        slow_server.port,
        max_connections=2,
        digests={"weekly": {"schedule": "0 9 * * 1", "misfire_grace": "6h"}},
    )
    site.add_post("Rust Tips", categories=["Engineering"], as_of=now, days_ago=0.1)
    site.add_post("Book Fair", categories=["Culture"], as_of=now, days_ago=0.2)
    store = site.store()
    add_subscribers(store, people(n))
    # A fire missed a minute ago (inside the grace): the scheduler runs it as soon as it starts.
    save_fire_state(store, "weekly", schedule="0 9 * * 1", next_fire_at=now - timedelta(minutes=1))

    scheduler = digest("--config", str(site.config_path), "schedule")
    manual = digest("--config", str(site.config_path), "send", "weekly")
    try:
        _out, err = manual.communicate(timeout=120)
        assert manual.returncode == 0, err
        deadline = time.monotonic() + 60
        while True:
            with store.session() as session:
                runs = history(session)
            if runs and all(r.status == "finished" for r in runs):
                break
            assert time.monotonic() < deadline, runs
            time.sleep(0.1)
    finally:
        scheduler.send_signal(signal.SIGTERM)
        _sout, serr = scheduler.communicate(timeout=60)
    assert scheduler.returncode == 0, serr
    assert "fired as of" in serr  # the scheduler did fire, while the manual send ran

    received = Counter(r.lower() for m in slow_server.handler.messages for r in m.rcpt_tos)
    assert len(received) == n  # everyone got the digest (all categories have a share)...
    assert set(received.values()) == {1}  # ...exactly once
    assert len(runs) == 1 and runs[0].sent == n
    store.dispose()
