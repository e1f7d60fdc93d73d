"""`digest schedule` as a user runs it: dry-run, errors, real sends, lease, SIGTERM and SIGKILL."""

from __future__ import annotations

import asyncio
import logging
import os
import re
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session
from apscheduler.triggers.interval import IntervalTrigger
from click.testing import CliRunner
from sqlalchemy import select

from digest.cli import cli
from digest.config import load_settings
from digest.schedule.scheduler import Scheduler
from digest.settings import Settings
from digest.store import Store, open_store
from digest.store.leases import read_lease, save_fire_state
from digest.store.models import Run
from digest.store.subscribers import add_subscriber
from tests.conftest import RecordingHandler, SmtpServer, free_port

LONDON = ZoneInfo("Europe/London")
WAIT = 20.0  # an upper bound for events, never a timing assertion


def write_site(
    tmp_path: Path,
    *,
    schedule: str = "0 * * * *",
    port: int = 2525,
    db: str | None = None,
    grace: str = "2h",
    extra_digest: str = "",
) -> Path:
    posts = tmp_path / "_posts"
    posts.mkdir(exist_ok=True)
    when = datetime.now(LONDON).replace(minute=0, second=0, microsecond=0) - timedelta(hours=3)
    (posts / f"{when:%Y-%m-%d}-fresh-news.md").write_text(
        textwrap.dedent(
            f"""\
            ---
            title: Fresh news
            date: {when.isoformat()}
            categories: [News]
            ---
            Something happened today.
            """
        ),
        encoding="utf-8",
    )
    config = tmp_path / "config.yaml"
    config.write_text(
        textwrap.dedent(
            f"""\
            site:
              title: Example Blog
              url: https://blog.example.com
              timezone: Europe/London
            email:
              from: "Example Blog <news@example.com>"
            web:
              secret: test-secret-0123456789abcdef
            smtp:
              host: 127.0.0.1
              port: {port}
              security: none
              max_connections: 1
              timeout: 5
            delivery:
              max_attempts: 1
              retry_backoff: 0
            database:
              url: {db or "sqlite:///digest.db"}
            digests:
              weekly:
                schedule: "{schedule}"
                misfire_grace: {grace}
            """
        )
        + extra_digest,
        encoding="utf-8",
    )
    return config


def run_cli(*args: str) -> Any:
    return CliRunner().invoke(cli, list(args))


# --- dry-run and config errors -------------------------------------------------------------


@pytest.mark.parametrize("schedule", ["0 9 * * mon", "0 9 * * 1"])
def test_dry_run_shows_monday_0900_with_offset(tmp_path: Path, schedule: str) -> None:
    config = write_site(tmp_path, schedule=schedule)
    result = run_cli("--config", str(config), "schedule", "--dry-run")
    assert result.exit_code == 0, result.output
    match = re.fullmatch(
        r"weekly  (\S+)  \(" + re.escape(schedule) + r", Europe/London\)\n", result.stdout
    )
    assert match, result.stdout
    when = datetime.fromisoformat(match.group(1))
    assert re.search(r"[+-]\d\d:\d\d$", match.group(1))
    assert when.utcoffset() == when.astimezone(LONDON).utcoffset()
    local = when.astimezone(LONDON)
    assert (local.weekday(), local.hour, local.minute) == (0, 9, 0)
    assert when > datetime.now(UTC)
    assert not (tmp_path / "digest.db").exists()  # no lease, nothing written


@pytest.mark.parametrize("args", [["schedule"], ["schedule", "--dry-run"]])
def test_invalid_schedule_exits_2_naming_file_and_key(tmp_path: Path, args: list[str]) -> None:
    config = write_site(
        tmp_path, extra_digest='  daily:\n    schedule: "0 9 * * 8"\n', schedule="0 9 * * mon"
    )
    result = run_cli("--config", str(config), *args)
    assert result.exit_code == 2
    assert result.stderr == (
        f"error: {config}: digests.daily.schedule: day of week 8 is out of range 0-7\n"
    )
    assert result.stdout == ""
    assert not (tmp_path / "digest.db").exists()  # validated before anything ran


# --- real sends through aiosmtpd ------------------------------------------------------------


@pytest.fixture
def site(tmp_path: Path, smtp_server: SmtpServer) -> Iterator[tuple[Settings, Store]]:
    settings = load_settings(write_site(tmp_path, port=smtp_server.port), environ={})
    store = open_store(settings.database.url)
    for i in range(3):
        add_subscriber(store, f"reader{i}@example.org", name=f"Reader {i}")
    try:
        yield settings, store
    finally:
        store.dispose()


class Running:
    def __init__(self, scheduler: Scheduler) -> None:
        self.scheduler = scheduler
        self.thread = threading.Thread(target=scheduler.run, daemon=True)

    def __enter__(self) -> Scheduler:
        self.thread.start()
        assert self.scheduler.started.wait(WAIT)
        return self.scheduler

    def __exit__(self, *exc: object) -> None:
        self.scheduler.stop()
        self.thread.join(WAIT)
        assert not self.thread.is_alive()


def wait_until(condition: Any, what: str) -> None:
    deadline = time.monotonic() + WAIT
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def test_a_fire_sends_through_real_smtp_as_of_the_scheduled_time(
    site: tuple[Settings, Store], smtp_server: SmtpServer
) -> None:
    settings, store = site
    scheduled = datetime.now(LONDON).replace(minute=0, second=0, microsecond=0)
    save_fire_state(store, "weekly", schedule="0 * * * *", next_fire_at=scheduled)
    with Running(Scheduler(settings, store)):
        wait_until(lambda: len(smtp_server.handler.messages) >= 3, "3 messages")
        wait_until(lambda: _runs(store) and _runs(store)[0].status == "finished", "run finished")
    got = sorted(r for m in smtp_server.handler.messages for r in m.rcpt_tos)
    assert got == [f"reader{i}@example.org" for i in range(3)]
    assert "Fresh news" in smtp_server.handler.messages[0].message.get_body().get_content()  # type: ignore[union-attr]
    [run] = _runs(store)
    assert run.trigger == "schedule" and run.as_of == scheduled


def _runs(store: Store) -> list[Run]:
    with store.session() as session:
        return list(session.scalars(select(Run).order_by(Run.id)))


def test_smtp_down_fails_the_fire_and_the_next_fire_sends(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    port = free_port()  # nothing listens here yet
    settings = load_settings(write_site(tmp_path, port=port), environ={})
    store = open_store(settings.database.url)
    add_subscriber(store, "reader@example.org")
    caplog.set_level(logging.INFO, logger="digest.schedule.scheduler")
    handler = RecordingHandler()
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    often = IntervalTrigger(seconds=0.25, timezone=LONDON)  # four fires a second
    try:
        with Running(Scheduler(settings, store, triggers={"weekly": often})):
            wait_until(
                lambda: any("failed after" in m for m in caplog.messages), "a failed fire logged"
            )
            controller.start()  # the server comes back; the scheduler is still firing
            wait_until(lambda: handler.to("reader@example.org"), "the message")
            wait_until(lambda: _runs(store)[-1].status == "finished", "run finished")
        assert len(handler.to("reader@example.org")) == 1
        failed = next(r for r in caplog.records if "failed after" in r.getMessage())
        assert failed.levelno == logging.ERROR and failed.exc_info is None
        assert f"127.0.0.1:{port}" in failed.getMessage()
    finally:
        controller.stop()
        store.dispose()


# --- processes: lease takeover after SIGKILL, SIGTERM during a send ---------------------------


def spawn(config: Path, log: Path, ttl: str = "1") -> subprocess.Popen[bytes]:
    env = {**os.environ, "DIGEST_SCHEDULER_LEASE_TTL": ttl}
    with log.open("wb") as stderr:  # the child keeps its own copy of the file
        return subprocess.Popen(
            [sys.executable, "-m", "digest", "--config", str(config), "schedule"],
            stdout=subprocess.DEVNULL,
            stderr=stderr,
            env=env,
            cwd=config.parent,
        )


def holder_pid(store: Store) -> int | None:
    lease = read_lease(store, "scheduler")
    return None if lease is None else int(lease.holder.split(":")[-2])


def test_second_scheduler_refuses_then_takes_over_after_sigkill(tmp_path: Path) -> None:
    config = write_site(tmp_path, schedule="0 9 * * mon")
    store = open_store(load_settings(config, environ={}).database.url)
    first = spawn(config, tmp_path / "first.log")
    second: subprocess.Popen[bytes] | None = None
    try:
        wait_until(lambda: holder_pid(store) == first.pid, "the first scheduler's lease")
        refused = run_cli("--config", str(config), "schedule")
        assert refused.exit_code == 1
        assert refused.stderr.startswith("error: another scheduler (")
        assert f":{first.pid}) holds the lease on " in refused.stderr
        assert len(refused.stderr.strip().splitlines()) == 1

        first.send_signal(signal.SIGKILL)
        first.wait(WAIT)
        # Its lease is left behind, and expires since nobody renews it (ttl 1 s).
        wait_until(lambda: _expired(store), "the dead scheduler's lease to expire")
        second = spawn(config, tmp_path / "second.log")
        wait_until(lambda: holder_pid(store) == second.pid, "the takeover after the lease expired")
        second.send_signal(signal.SIGTERM)
        assert second.wait(WAIT) == 0
        assert read_lease(store, "scheduler") is None  # released on a clean stop
        log = (tmp_path / "second.log").read_text()
        assert "weekly: next fire " in log and "(0 9 * * mon, Europe/London)" in log
    finally:
        for proc in (first, second):
            if proc is not None and proc.poll() is None:
                proc.kill()
                proc.wait()
        store.dispose()


def _expired(store: Store) -> bool:
    lease = read_lease(store, "scheduler")
    return lease is not None and lease.expires_at <= datetime.now(UTC)


class SlowHandler(RecordingHandler):
    delay: float = 0.25  # seconds over each message: SIGTERM lands in the middle of a send

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        await asyncio.sleep(self.delay)
        return await super().handle_DATA(server, session, envelope)


def test_sigterm_during_a_send_leaves_a_run_the_next_send_finishes_once(tmp_path: Path) -> None:
    handler = SlowHandler()
    port = free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    config = write_site(tmp_path, port=port)
    settings = load_settings(config, environ={})
    store = open_store(settings.database.url)
    readers = [f"reader{i:02}@example.org" for i in range(15)]
    for email in readers:
        add_subscriber(store, email)
    scheduled = datetime.now(LONDON).replace(minute=0, second=0, microsecond=0)
    save_fire_state(store, "weekly", schedule="0 * * * *", next_fire_at=scheduled)
    proc = spawn(config, tmp_path / "scheduler.log", ttl="30")
    try:
        wait_until(lambda: len(handler.messages) >= 2, "the send to start")
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(WAIT) == 0
        log = (tmp_path / "scheduler.log").read_text()
        sent_by_scheduler = len(handler.messages)
        assert 2 <= sent_by_scheduler < len(readers), log
        [run] = _runs(store)
        assert run.status == "sending" and run.trigger == "schedule"

        handler.delay = 0  # the rest needs no waiting
        result = run_cli("--config", str(config), "send", "weekly")
        assert result.exit_code == 0, result.output + result.stderr
        for email in readers:
            assert len(handler.to(email)) == 1, email
        assert len(handler.messages) == len(readers)
        assert [r.status for r in _runs(store)] == ["finished"]
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        controller.stop()
        store.dispose()
