"""The scheduler: APScheduler wiring, misfires after restarts, the lease (crontab: test_crontab)."""

from __future__ import annotations

import logging
import textwrap
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.date import DateTrigger
from apscheduler.triggers.interval import IntervalTrigger

from digest.config import load_settings
from digest.crontab import CrontabSchedule, check_crontab
from digest.delivery.links import LinksHeldError
from digest.errors import ConfigError, SchedulerBusyError, SmtpConnectError
from digest.schedule.lease import lease_ttl_from_env
from digest.schedule.scheduler import Scheduler, build_trigger, upcoming_fires
from digest.settings import Settings
from digest.settings.durations import format_duration
from digest.store import Store
from digest.store.leases import (
    acquire_lease,
    load_fire_state,
    read_lease,
    release_lease,
    renew_lease,
    save_fire_state,
)
from tests.conftest import sqlite_only
from tests.helpers.scheduling import WAIT, Running

LONDON = ZoneInfo("Europe/London")


def at(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=LONDON)


def test_the_trigger_is_an_apscheduler_trigger_with_the_crontab_fire_times() -> None:
    trigger = build_trigger("0 9 * * mon", LONDON)
    assert isinstance(trigger, BaseTrigger)
    plain = CrontabSchedule(check_crontab("0 9 * * mon"), LONDON)
    start = at(2025, 3, 20)
    assert trigger.get_next_fire_time(None, start) == plain.get_next_fire_time(None, start)
    assert trigger.get_next_fire_time(None, start) == at(2025, 3, 24, 9)
    assert repr(trigger) == "<DigestTrigger '0 9 * * mon' Europe/London>"
    with pytest.raises(ValueError, match="never fires"):
        build_trigger("0 0 30 2 *", LONDON)


# --- config-level errors and dry-run values ------------------------------------------------

CONFIG = """\
site:
  title: Example Blog
  url: https://blog.example.com
  timezone: {tz}
email:
  from: "Example Blog <news@example.com>"
web:
  secret: test-secret-0123456789abcdef
database:
  url: {db}
digests:
{digests}
"""


def make_settings(
    tmp_path: Path, db: str, digests: dict[str, dict[str, str]], tz: str = "Europe/London"
) -> Settings:
    (tmp_path / "_posts").mkdir(exist_ok=True)
    lines = []
    for name, keys in digests.items():
        lines.append(f"  {name}:")
        lines += [
            f"    {k}: {v!r}" if k == "schedule" else f"    {k}: {v}" for k, v in keys.items()
        ]
    path = tmp_path / "config.yaml"
    path.write_text(
        textwrap.dedent(CONFIG).format(tz=tz, db=db, digests="\n".join(lines)), encoding="utf-8"
    )
    return load_settings(path, environ={})


def test_invalid_schedule_is_a_config_error_at_load_naming_file_and_key(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        make_settings(tmp_path, "sqlite:///x.db", {"weekly": {"schedule": "0 9 * * 9"}})
    assert info.value.exit_code == 2
    assert str(info.value) == (
        f"{tmp_path / 'config.yaml'}: digests.weekly.schedule: day of week 9 is out of range 0-7"
    )


def test_upcoming_fires_in_site_zone(tmp_path: Path) -> None:
    settings = make_settings(
        tmp_path,
        "sqlite:///x.db",
        {"weekly": {"schedule": "0 9 * * 1"}, "daily": {"schedule": "30 7 * * *"}},
        tz="America/New_York",
    )
    got = {f.digest: f for f in upcoming_fires(settings, datetime(2025, 7, 2, 12, tzinfo=UTC))}
    assert got["weekly"].next_fire_at.isoformat() == "2025-07-07T09:00:00-04:00"
    assert got["daily"].next_fire_at.isoformat() == "2025-07-03T07:30:00-04:00"
    assert got["daily"].timezone == "America/New_York"


def test_format_duration_and_lease_ttl_env() -> None:
    assert format_duration(timedelta(hours=6)) == "6h"
    assert format_duration(timedelta(minutes=90)) == "1h30m"
    assert lease_ttl_from_env({}) == timedelta(seconds=30)
    assert lease_ttl_from_env({"DIGEST_SCHEDULER_LEASE_TTL": "1.5"}) == timedelta(seconds=1.5)
    with pytest.raises(ConfigError, match="DIGEST_SCHEDULER_LEASE_TTL"):
        lease_ttl_from_env({"DIGEST_SCHEDULER_LEASE_TTL": "soon"})


# --- lease and stored fire state (SQLite and PostgreSQL) ------------------------------------


def test_lease_acquire_renew_expire_release(store: Store) -> None:
    t0 = datetime(2025, 6, 1, 12, tzinfo=UTC)
    ttl = timedelta(seconds=30)
    assert acquire_lease(store, "scheduler", "a:1:x", ttl=ttl, now=t0).holder == "a:1:x"
    busy = acquire_lease(store, "scheduler", "b:2:y", ttl=ttl, now=t0 + timedelta(seconds=10))
    assert busy.holder == "a:1:x" and busy.expires_at == t0 + ttl
    renewed = renew_lease(store, "scheduler", "a:1:x", ttl=ttl, now=t0 + timedelta(seconds=20))
    assert renewed is not None and renewed.expires_at == t0 + timedelta(seconds=50)
    # Not renewed in time (the holder died): the other takes over and the first one learns it.
    later = t0 + timedelta(seconds=51)
    assert acquire_lease(store, "scheduler", "b:2:y", ttl=ttl, now=later).holder == "b:2:y"
    assert renew_lease(store, "scheduler", "a:1:x", ttl=ttl, now=later) is None
    release_lease(store, "scheduler", "a:1:x")  # not ours any more: no effect
    assert read_lease(store, "scheduler") is not None
    release_lease(store, "scheduler", "b:2:y")
    assert read_lease(store, "scheduler") is None


def test_fire_state_round_trip(store: Store) -> None:
    assert load_fire_state(store, "weekly").next_fire_at is None
    when = at(2025, 11, 24, 9, 0)
    save_fire_state(store, "weekly", schedule="0 9 * * mon", next_fire_at=when)
    save_fire_state(store, "weekly", schedule="0 9 * * 1", next_fire_at=when + timedelta(days=7))
    state = load_fire_state(store, "weekly")
    assert state.schedule == "0 9 * * 1"
    assert state.next_fire_at == when + timedelta(days=7)
    assert state.next_fire_at is not None and state.next_fire_at.tzinfo is not None


# --- the scheduler loop, with an injected run_digest ----------------------------------------
# Its store calls are the ones above; the loop's logic runs on SQLite, a restart on both.


@dataclass
class Report:
    posts: int = 1
    sent: int = 2
    failed: int = 0
    pending: int = 0


@dataclass
class Recorder:
    """A run_digest that records each call's as_of; can fail the first `fail` calls."""

    fail: int = 0
    calls: list[datetime] = field(default_factory=list)
    event: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def __call__(
        self, settings: Settings, store: Store, name: str, *, as_of: datetime, stop: Any
    ) -> list[Report]:
        with self.lock:
            self.calls.append(as_of)
            self.event.set()
            if len(self.calls) <= self.fail:
                raise SmtpConnectError("SMTP server 127.0.0.1:9 unreachable: connection refused")
        return [Report()]

    def wait_for(self, count: int) -> None:
        deadline = datetime.now(UTC) + timedelta(seconds=WAIT)
        while datetime.now(UTC) < deadline:
            with self.lock:
                if len(self.calls) >= count:
                    return
            self.event.wait(0.05)
            self.event.clear()
        raise AssertionError(f"run_digest called {len(self.calls)} times, expected {count}")


def floor_hour(tz: ZoneInfo = LONDON) -> datetime:
    now = datetime.now(tz)
    return now.replace(minute=0, second=0, microsecond=0)


def hourly(tmp_path: Path, store: Store, grace: str = "2h") -> Settings:
    return make_settings(
        tmp_path, store.url, {"weekly": {"schedule": "0 * * * *", "misfire_grace": grace}}
    )


def test_a_missed_fire_inside_the_grace_runs_once_after_a_restart(
    tmp_path: Path, store: Store
) -> None:
    settings = hourly(tmp_path, store)
    missed = floor_hour()
    save_fire_state(store, "weekly", schedule="0 * * * *", next_fire_at=missed)
    recorder = Recorder()
    with Running(Scheduler(settings, store, run_digest=recorder)):
        recorder.wait_for(1)
    assert recorder.calls == [missed]
    assert recorder.calls[0].utcoffset() == missed.utcoffset()
    # After the fire the next one is stored.
    assert load_fire_state(store, "weekly").next_fire_at == missed + timedelta(hours=1)


@sqlite_only
def test_several_missed_fires_coalesce_into_the_latest(tmp_path: Path, store: Store) -> None:
    settings = hourly(tmp_path, store, grace="6h")
    latest = floor_hour()
    save_fire_state(store, "weekly", schedule="0 * * * *", next_fire_at=latest - timedelta(hours=5))
    recorder = Recorder()
    with Running(Scheduler(settings, store, run_digest=recorder)):
        recorder.wait_for(1)
    assert recorder.calls == [latest]


@sqlite_only
def test_a_missed_fire_outside_the_grace_is_logged_and_not_run(
    tmp_path: Path, store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    settings = make_settings(
        tmp_path, store.url, {"weekly": {"schedule": "0 0 1 1 *", "misfire_grace": "6h"}}
    )
    old = at(2025, 1, 1, 0, 0)
    save_fire_state(store, "weekly", schedule="0 0 1 1 *", next_fire_at=old)
    recorder = Recorder()
    caplog.set_level(logging.INFO, logger="digest.schedule.scheduler")
    with Running(Scheduler(settings, store, run_digest=recorder)):
        pass
    assert recorder.calls == []
    assert (
        "missed fire of weekly at 2025-01-01T00:00:00+00:00 skipped (older than misfire_grace 6h)"
        in caplog.messages
    )
    next_fire = load_fire_state(store, "weekly").next_fire_at
    assert next_fire is not None and next_fire > datetime.now(UTC)
    assert next_fire.astimezone(LONDON).timetuple()[1:6] == (1, 1, 0, 0, 0)


@sqlite_only
def test_a_changed_schedule_is_recomputed_on_start(
    tmp_path: Path, store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    settings = make_settings(
        tmp_path, store.url, {"weekly": {"schedule": "0 9 * * mon", "misfire_grace": "2h"}}
    )
    save_fire_state(store, "weekly", schedule="0 * * * *", next_fire_at=floor_hour())
    recorder = Recorder()
    caplog.set_level(logging.INFO, logger="digest.schedule.scheduler")
    with Running(Scheduler(settings, store, run_digest=recorder)):
        pass
    assert recorder.calls == []
    state = load_fire_state(store, "weekly")
    assert state.schedule == "0 9 * * mon"
    assert state.next_fire_at is not None
    local = state.next_fire_at.astimezone(LONDON)
    assert (local.weekday(), local.hour, local.minute) == (0, 9, 0)
    assert any("schedule changed from '0 * * * *' to '0 9 * * mon'" in m for m in caplog.messages)
    assert any(m.startswith("weekly: next fire ") for m in caplog.messages)


@sqlite_only
def test_a_due_job_fires_and_a_failed_run_does_not_stop_the_scheduler(
    tmp_path: Path, store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    settings = hourly(tmp_path, store)
    recorder = Recorder(fail=1)
    caplog.set_level(logging.INFO, logger="digest.schedule.scheduler")
    often = IntervalTrigger(seconds=0.25, timezone=LONDON)  # four fires a second
    scheduler = Scheduler(settings, store, run_digest=recorder, triggers={"weekly": often})
    with Running(scheduler):
        recorder.wait_for(3)
    assert recorder.calls == sorted(recorder.calls) and len(set(recorder.calls)) >= 3
    failed = [r for r in caplog.records if "failed" in r.getMessage()]
    assert failed and failed[0].levelno == logging.ERROR and failed[0].exc_info is None
    assert "SMTP server 127.0.0.1:9 unreachable" in failed[0].getMessage()
    fired = [m for m in caplog.messages if " fired as of " in m]
    assert fired and fired[0].startswith("weekly fired as of ")
    assert "posts=1 sent=2 failed=0 pending=0 in " in fired[0]
    stored = load_fire_state(store, "weekly").next_fire_at
    assert stored is not None and stored > recorder.calls[0]


@sqlite_only
def test_an_unexpected_error_is_logged_with_traceback_and_it_keeps_going(
    tmp_path: Path, store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    calls: list[datetime] = []
    done = threading.Event()

    def broken(settings: Settings, store: Store, name: str, *, as_of: datetime, stop: Any) -> Any:
        calls.append(as_of)
        if len(calls) >= 2:
            done.set()
        raise RuntimeError("bug in a run")

    often = IntervalTrigger(seconds=0.25, timezone=LONDON)  # four fires a second
    scheduler = Scheduler(
        hourly(tmp_path, store), store, run_digest=broken, triggers={"weekly": often}
    )
    with Running(scheduler):
        assert done.wait(WAIT)
    errors = [r for r in caplog.records if "failed unexpectedly" in r.getMessage()]
    assert errors and errors[0].exc_info is not None


def test_a_second_scheduler_refuses_while_the_first_holds_the_lease(
    tmp_path: Path, store: Store
) -> None:
    settings = hourly(tmp_path, store)
    first = Scheduler(settings, store, run_digest=Recorder())
    with Running(first):
        second = Scheduler(settings, store, run_digest=Recorder())
        with pytest.raises(SchedulerBusyError) as info:
            second.run()
        who = first.holder.rsplit(":", 1)[0]
        assert str(info.value).startswith(f"another scheduler ({who}) holds the lease on ")
        assert info.value.exit_code == 1
    # The first released its lease on a clean stop: the second can start at once.
    assert read_lease(store, "scheduler") is None
    with Running(Scheduler(settings, store, run_digest=Recorder())):
        pass


def test_losing_the_lease_stops_the_scheduler(tmp_path: Path, store: Store) -> None:
    settings = hourly(tmp_path, store)
    scheduler = Scheduler(settings, store, run_digest=Recorder(), lease_ttl=timedelta(seconds=0.6))
    running = Running(scheduler)
    with running:
        # Someone took it over (e.g. after we stalled past our expiry).
        acquire_lease(
            store,
            "scheduler",
            "thief:1:zz",
            ttl=timedelta(hours=1),
            now=datetime.now(UTC) + timedelta(minutes=5),
        )
        running.thread.join(WAIT)
        assert not running.thread.is_alive()
    assert isinstance(running.error, SchedulerBusyError)
    assert "lost the scheduler lease" in str(running.error)
    lease = read_lease(store, "scheduler")
    assert lease is not None and lease.holder == "thief:1:zz"


@dataclass
class HeldOnce(Recorder):
    """check_links: hold: the first call finds a post not live, the next one goes."""

    def __call__(
        self, settings: Settings, store: Store, name: str, *, as_of: datetime, stop: Any
    ) -> list[Report]:
        with self.lock:
            self.calls.append(as_of)
            self.event.set()
            if len(self.calls) == 1:
                raise LinksHeldError(
                    "weekly: held: https://blog.example.com/new.html answers 404; "
                    "no run started (check_links: hold)",
                    url="https://blog.example.com/new.html",
                )
        return [Report()]


def test_a_held_fire_is_retried_within_the_grace_as_of_its_own_time(
    tmp_path: Path, store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    settings = hourly(tmp_path, store)
    held = HeldOnce()
    caplog.set_level(logging.INFO, logger="digest.schedule.scheduler")
    once = DateTrigger(datetime.now(LONDON) + timedelta(seconds=0.2), timezone=LONDON)
    scheduler = Scheduler(
        settings,
        store,
        run_digest=held,
        triggers={"weekly": once},
        hold_retry=timedelta(seconds=0.2),
    )
    with Running(scheduler):
        held.wait_for(2)
    assert len(held.calls) == 2 and held.calls[0] == held.calls[1]
    [retry] = [m for m in caplog.messages if "retrying at" in m]
    assert retry.startswith("weekly: held: https://blog.example.com/new.html answers 404")
    assert "misfire_grace 2h ends at" in retry
