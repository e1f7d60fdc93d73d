"""`digest schedule`: fire each digest on its crontab in site.timezone, once, through restarts.

A door onto delivery.send_digest; the only home of APScheduler. One scheduler per database (lease).
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import functools
import logging
import os
import re
import signal
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, tzinfo
from types import FrameType
from typing import Any, Protocol

from apscheduler.events import EVENT_JOB_EXECUTED, EVENT_SCHEDULER_START, JobExecutionEvent
from apscheduler.executors.base import BaseExecutor
from apscheduler.schedulers import SchedulerNotRunningError
from apscheduler.schedulers.blocking import BlockingScheduler
from apscheduler.triggers.base import BaseTrigger

from digest.config import DigestSettings, Settings
from digest.errors import ConfigError, DatabaseError, DigestError, SchedulerBusyError
from digest.store import Store, masked_url
from digest.store.leases import (
    acquire_lease,
    load_fire_state,
    release_lease,
    renew_lease,
    save_fire_state,
)
from digest.store.workers import new_worker_id

log = logging.getLogger("digest.scheduler")

SCHEDULER_LEASE = "scheduler"
DEFAULT_LEASE_TTL = timedelta(seconds=30)
LEASE_TTL_ENV = "DIGEST_SCHEDULER_LEASE_TTL"

_WEEKDAY_NAMES = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")  # standard cron: 0 = Sunday
_MONTH_NAMES = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
_ITEM = re.compile(r"^(?:(\*)|([a-z0-9]+)(?:-([a-z0-9]+))?)(?:/(\d+))?$", re.IGNORECASE)


# --- crontab -------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Field:
    label: str
    low: int
    high: int
    names: tuple[str, ...] = ()
    name_base: int = 0


_FIELDS = (
    _Field("minute", 0, 59),
    _Field("hour", 0, 23),
    _Field("day of month", 1, 31),
    _Field("month", 1, 12, _MONTH_NAMES, 1),
    # 7 is accepted as Sunday and folded onto 0 after parsing.
    _Field("day of week", 0, 7, _WEEKDAY_NAMES, 0),
)


@dataclass(frozen=True)
class Crontab:
    """A parsed 5-field crontab with standard meaning (weekday 0 and 7 = Sunday, 1 = Monday)."""

    expression: str
    minutes: frozenset[int]
    hours: frozenset[int]
    days: frozenset[int]
    months: frozenset[int]
    weekdays: frozenset[int]  # 0 = Sunday ... 6 = Saturday
    days_restricted: bool  # the day-of-month field does not start with "*"
    weekdays_restricted: bool  # the day-of-week field does not start with "*"


def _value(text: str, field: _Field) -> int:
    lowered = text.lower()
    if lowered in field.names:
        return field.names.index(lowered) + field.name_base
    if not text.isdigit():
        expected = (
            f"a number or a name ({field.names[0]}..{field.names[-1]})"
            if field.names
            else "a number"
        )
        raise ValueError(f"{field.label} {text!r} is not {expected}")
    number = int(text)
    if not field.low <= number <= field.high:
        raise ValueError(f"{field.label} {number} is out of range {field.low}-{field.high}")
    return number


def _parse_field(text: str, field: _Field) -> frozenset[int]:
    values: set[int] = set()
    for item in text.split(","):
        match = _ITEM.match(item)
        if not match:
            raise ValueError(f"{field.label} field {text!r}: cannot read {item!r}")
        star, first, last, step_text = match.groups()
        step = int(step_text) if step_text else 1
        if step < 1:
            raise ValueError(f"{field.label} field {text!r}: step must be at least 1")
        if star:
            low, high = field.low, field.high
        else:
            low = _value(first, field)
            # "5/15" means 5, 20, 35, ... to the end of the range, as in cronie.
            high = _value(last, field) if last else (field.high if step_text else low)
            if low > high:
                raise ValueError(f"{field.label} range {item!r} goes backwards")
        values.update(range(low, high + 1, step))
    return frozenset(values)


# Vixie cron's nicknames (@reboot has no meaning for a digest).
CRON_ALIASES = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}


def parse_crontab(expression: str) -> Crontab:
    """Read a standard 5-field crontab (or @daily-style nickname); ValueError says what is wrong."""
    parts = CRON_ALIASES.get(expression.strip().lower(), expression).split()
    if len(parts) != 5:
        raise ValueError(
            f"{expression!r} has {len(parts)} fields; a crontab has 5 "
            "(minute hour day-of-month month day-of-week), like '0 9 * * mon'"
        )
    minutes, hours, days, months, weekdays = (
        _parse_field(text, field) for text, field in zip(parts, _FIELDS, strict=True)
    )
    return Crontab(
        expression=expression,
        minutes=minutes,
        hours=hours,
        days=days,
        months=months,
        weekdays=frozenset(d % 7 for d in weekdays),
        days_restricted=not parts[2].startswith("*"),
        weekdays_restricted=not parts[4].startswith("*"),
    )


def _day_matches(tab: Crontab, day: date) -> bool:
    cron_weekday = (day.weekday() + 1) % 7  # Python: Monday = 0; cron: Sunday = 0
    if day.month not in tab.months:
        return False
    if tab.days_restricted and tab.weekdays_restricted:
        # Standard (Vixie) cron: when both are restricted, a day matching EITHER one fires.
        return day.day in tab.days or cron_weekday in tab.weekdays
    return day.day in tab.days and cron_weekday in tab.weekdays


# Long enough for "29 feb" on a Monday (28 years), short enough to end a search quickly.
_SEARCH_DAYS = 366 * 30


class DigestTrigger(BaseTrigger):  # type: ignore[misc]
    """A crontab trigger with standard semantics and sane daylight-saving behaviour.

    Walks wall-clock dates itself rather than using APScheduler 3's CronTrigger, whose
    increments shift by the DST offset (3.11.3: "0 0 1 * *" in Europe/London skips 1 April).
    A wall-clock time skipped by a spring change fires at the same offset after the change
    (01:30 becomes 02:30 BST), as `--as-of 01:30` reads; a time that happens twice (autumn)
    fires once, the first time. Fire times are real, normalised, strictly increasing instants.
    """

    __slots__ = ("_hours", "_minutes", "crontab", "timezone")

    def __init__(self, crontab: Crontab, tz: tzinfo) -> None:
        self.crontab = crontab
        self.timezone = tz
        self._hours = sorted(crontab.hours)
        self._minutes = sorted(crontab.minutes)

    def get_next_fire_time(
        self, previous_fire_time: datetime | None, now: datetime
    ) -> datetime | None:
        # APScheduler asks for the first fire after the previous one, or at/after now.
        threshold = (
            previous_fire_time + timedelta(microseconds=1)
            if previous_fire_time is not None
            else now
        )
        # A day early: near a change the wall clock and the instant differ by the offset.
        day = threshold.astimezone(self.timezone).date() - timedelta(days=1)
        for _ in range(_SEARCH_DAYS):
            if _day_matches(self.crontab, day):
                for hour in self._hours:
                    for minute in self._minutes:
                        # fold=0: the first of a repeated time; a skipped time maps past the gap.
                        wall = datetime(
                            day.year, day.month, day.day, hour, minute, tzinfo=self.timezone
                        )
                        real = wall.astimezone(UTC).astimezone(self.timezone)
                        if real >= threshold:
                            return real
            day += timedelta(days=1)
        return None

    def __str__(self) -> str:
        return f"crontab[{self.crontab.expression}]"

    def __repr__(self) -> str:
        return f"<DigestTrigger {self.crontab.expression!r} {self.timezone}>"


def build_trigger(expression: str, tz: tzinfo) -> DigestTrigger:
    """The trigger for a crontab in a zone; ValueError if it is invalid or never fires."""
    trigger = DigestTrigger(parse_crontab(expression), tz)
    # e.g. "0 0 30 2 *": valid fields, but no such day.
    if trigger.get_next_fire_time(None, datetime(2000, 1, 1, tzinfo=tz)) is None:
        raise ValueError(f"{expression!r} never fires (no such date)")
    return trigger


def digest_trigger(settings: Settings, digest: DigestSettings) -> DigestTrigger:
    """A digest's trigger in site.timezone; ConfigError naming the file and key if invalid."""
    try:
        return build_trigger(digest.schedule, settings.site.tz)
    except ValueError as exc:
        raise ConfigError(f"{settings.source}: digests.{digest.name}.schedule: {exc}") from None


def validate_schedules(settings: Settings) -> dict[str, DigestTrigger]:
    """Every digest's trigger, checked before anything runs; ConfigError on the first bad one."""
    if not settings.digests:
        raise ConfigError(f"{settings.source}: digests: none defined, nothing to schedule")
    return {name: digest_trigger(settings, d) for name, d in settings.digests.items()}


class FireTimes(Protocol):
    """An APScheduler trigger: the next fire time after the previous one."""

    def get_next_fire_time(
        self, previous_fire_time: datetime | None, now: datetime
    ) -> datetime | None: ...


def next_fire_after(trigger: FireTimes, after: datetime) -> datetime | None:
    """The first fire time strictly after `after`."""
    return trigger.get_next_fire_time(after, after)


def latest_fire(
    trigger: FireTimes, since: datetime, now: datetime, grace: timedelta
) -> datetime | None:
    """The latest fire time in [since, now] that is within `grace` of now (coalescing), or None."""
    start = since if since >= now - grace else trigger.get_next_fire_time(None, now - grace)
    if start is None or start > now:
        return None
    latest = start
    while (following := next_fire_after(trigger, latest)) is not None and following <= now:
        latest = following
    return latest


@dataclass(frozen=True)
class UpcomingFire:
    """A digest's next fire time, for `schedule --dry-run`."""

    digest: str
    next_fire_at: datetime
    schedule: str
    timezone: str


def upcoming_fires(settings: Settings, now: datetime) -> list[UpcomingFire]:
    """Each digest's next fire after `now`, in site.timezone; reads and writes nothing."""
    fires = []
    for name, trigger in validate_schedules(settings).items():
        at = trigger.get_next_fire_time(None, now.astimezone(settings.site.tz))
        if at is not None:
            fires.append(
                UpcomingFire(name, at, settings.digests[name].schedule, settings.site.timezone)
            )
    return fires


def format_duration(value: timedelta) -> str:
    """6h, 1h30m, 45s: how misfire_grace is written in the config."""
    seconds = int(value.total_seconds())
    parts = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        if seconds >= size:
            parts.append(f"{seconds // size}{unit}")
            seconds %= size
    return "".join(parts) or "0s"


def lease_ttl_from_env(environ: dict[str, str] | None = None) -> timedelta:
    """The scheduler lease TTL: $DIGEST_SCHEDULER_LEASE_TTL seconds (for tests), else 30 s."""
    text = (os.environ if environ is None else environ).get(LEASE_TTL_ENV, "").strip()
    if not text:
        return DEFAULT_LEASE_TTL
    try:
        seconds = float(text)
    except ValueError:
        seconds = -1.0
    if seconds < 0.3:
        raise ConfigError(f"{LEASE_TTL_ENV}: {text!r} is not a number of seconds (>= 0.3)")
    return timedelta(seconds=seconds)


# --- running -------------------------------------------------------------------------------


class RunSummary(Protocol):
    """What the scheduler reads from a delivery.RunReport."""

    @property
    def posts(self) -> int: ...
    @property
    def sent(self) -> int: ...
    @property
    def failed(self) -> int: ...
    @property
    def pending(self) -> int: ...


class RunDigest(Protocol):
    """Run one digest as of a scheduled time (delivery.send_digest with trigger="schedule")."""

    def __call__(
        self,
        settings: Settings,
        store: Store,
        name: str,
        *,
        as_of: datetime,
        stop: threading.Event,
    ) -> Sequence[RunSummary]: ...


def send_scheduled(
    settings: Settings, store: Store, name: str, *, as_of: datetime, stop: threading.Event
) -> Sequence[RunSummary]:
    """The default job: exactly what `digest send NAME --as-of <scheduled time>` runs."""
    from digest.delivery import send_digest

    return send_digest(settings, store, name, as_of=as_of, trigger="schedule", stop=stop)


class _FireExecutor(BaseExecutor):  # type: ignore[misc]
    """Runs jobs in threads, handing each job the scheduled time APScheduler fired it for."""

    def __init__(self, workers: int) -> None:
        super().__init__()
        self._pool = concurrent.futures.ThreadPoolExecutor(
            max(1, workers), thread_name_prefix="digest-fire"
        )

    def _do_submit_job(self, job: Any, run_times: list[datetime]) -> None:
        scheduled = run_times[-1]  # coalesced: only the latest due fire runs

        def done(future: concurrent.futures.Future[None]) -> None:
            exc = future.exception()
            if exc is not None:
                self._run_job_error(job.id, exc, exc.__traceback__)
            else:
                event = JobExecutionEvent(
                    EVENT_JOB_EXECUTED, job.id, job._jobstore_alias, scheduled
                )
                self._run_job_success(job.id, [event])

        call = functools.partial(job.func, *job.args, scheduled)
        self._pool.submit(call).add_done_callback(done)

    def shutdown(self, wait: bool = True) -> None:
        self._pool.shutdown(wait)


def _iso(value: datetime, tz: tzinfo) -> str:
    return value.astimezone(tz).isoformat(timespec="seconds")


class Scheduler:
    """One `digest schedule` process: lease, catch-up of missed fires, a cron job per digest."""

    def __init__(
        self,
        settings: Settings,
        store: Store,
        *,
        run_digest: RunDigest = send_scheduled,
        lease_ttl: timedelta = DEFAULT_LEASE_TTL,
        clock: Callable[[], datetime] | None = None,
        triggers: Mapping[str, FireTimes] | None = None,
    ) -> None:
        self.settings = settings
        self.store = store
        # `triggers` replaces the crontab triggers (tests use a seconds-interval trigger).
        self.triggers: dict[str, FireTimes] = dict(validate_schedules(settings))
        self.triggers.update(triggers or {})
        self.lease_ttl = lease_ttl
        self.holder = new_worker_id()
        self.stop_event = threading.Event()
        self._run_digest = run_digest
        self._clock = clock or (lambda: datetime.now(UTC))
        self._tz = settings.site.tz
        self._digest_locks = {name: threading.Lock() for name in settings.digests}
        self._scheduler: Any = None
        self._executor: _FireExecutor | None = None
        self._lease_until: datetime | None = None
        self._lease_lost_to: str | None = None
        self._started = threading.Event()

    # -- lease --

    def _acquire(self) -> None:
        info = acquire_lease(self.store, SCHEDULER_LEASE, self.holder, ttl=self.lease_ttl)
        if info.holder != self.holder:
            who = info.holder.rsplit(":", 1)[0]
            raise SchedulerBusyError(
                f"another scheduler ({who}) holds the lease on {masked_url(self.store.url)} "
                f"until {_iso(info.expires_at, self._tz)}; stop it first, or wait for its lease "
                "to expire if it died"
            )
        self._lease_until = info.expires_at

    def _keep_lease(self) -> None:
        """Renew every ttl/3 until stopped; stop everything if another scheduler took over."""
        interval = self.lease_ttl.total_seconds() / 3
        while not self.stop_event.wait(interval):
            try:
                info = renew_lease(self.store, SCHEDULER_LEASE, self.holder, ttl=self.lease_ttl)
            except DigestError as exc:
                log.warning("cannot renew the scheduler lease: %s", exc.message)
                if self._lease_until is not None and self._clock() < self._lease_until:
                    continue
                info = None
            if info is None:
                self._lease_lost_to = "another scheduler"
                log.error("lost the scheduler lease; stopping")
                self.stop()
                return
            self._lease_until = info.expires_at
        # stop() may have come before the scheduler started: make sure it shuts down.
        self._shutdown_scheduler()

    # -- start-up --

    def _prepare(self, name: str, scheduler: Any) -> None:
        digest = self.settings.digests[name]
        trigger = self.triggers[name]
        grace = digest.misfire_grace
        now = self._clock()
        state = load_fire_state(self.store, name)
        catch_up: datetime | None = None
        if state.schedule is not None and state.schedule != digest.schedule:
            log.info(
                "%s: schedule changed from %r to %r; next fire recomputed",
                name,
                state.schedule,
                digest.schedule,
            )
        elif state.next_fire_at is not None and state.next_fire_at <= now:
            catch_up = latest_fire(trigger, state.next_fire_at, now, grace)
            if catch_up is None:
                log.warning(
                    "missed fire of %s at %s skipped (older than misfire_grace %s)",
                    name,
                    _iso(state.next_fire_at, self._tz),
                    format_duration(grace),
                )
            else:
                log.info(
                    "%s: fire at %s was missed while stopped; running it now (within "
                    "misfire_grace %s)",
                    name,
                    _iso(catch_up, self._tz),
                    format_duration(grace),
                )
        upcoming = trigger.get_next_fire_time(None, now.astimezone(self._tz))
        first = catch_up or upcoming
        if first is None:
            return
        # A pending catch-up stays stored until it has run, so a crash now retries it.
        save_fire_state(self.store, name, schedule=digest.schedule, next_fire_at=first)
        log.info(
            "%s: next fire %s (%s, %s)",
            name,
            _iso(upcoming or first, self._tz),
            digest.schedule,
            self.settings.site.timezone,
        )
        scheduler.add_job(
            self._fire,
            trigger=trigger,
            args=(name,),
            id=name,
            name=f"digest {name}",
            misfire_grace_time=max(1, int(grace.total_seconds())),
            coalesce=True,
            max_instances=1,
            replace_existing=True,
            next_run_time=first,
        )

    # -- firing --

    def _fire(self, name: str, scheduled: datetime | None = None) -> None:
        # `scheduled` is always given by _FireExecutor; the default satisfies add_job's check.
        if scheduled is None or self.stop_event.is_set():
            return
        digest = self.settings.digests[name]
        when = _iso(scheduled, self._tz)
        now = self._clock()
        if now - scheduled > digest.misfire_grace:
            log.warning(
                "missed fire of %s at %s skipped (older than misfire_grace %s)",
                name,
                when,
                format_duration(digest.misfire_grace),
            )
            self._store_next(name, max(now, scheduled))
            return
        interrupted = False
        with self._digest_locks[name]:
            started = time.monotonic()
            try:
                reports = self._run_digest(
                    self.settings, self.store, name, as_of=scheduled, stop=self.stop_event
                )
            except DigestError as exc:
                log.error(
                    "%s as of %s failed after %.1fs: %s (pending deliveries go out at the next "
                    "fire or with `digest send %s`)",
                    name,
                    when,
                    time.monotonic() - started,
                    exc.message,
                    name,
                )
                interrupted = self.stop_event.is_set()
            except Exception:
                log.exception("%s as of %s failed unexpectedly", name, when)
                interrupted = self.stop_event.is_set()
            else:
                pending = sum(r.pending for r in reports)
                log.info(
                    "%s fired as of %s: posts=%d sent=%d failed=%d pending=%d in %.1fs",
                    name,
                    when,
                    sum(r.posts for r in reports),
                    sum(r.sent for r in reports),
                    sum(r.failed for r in reports),
                    pending,
                    time.monotonic() - started,
                )
                interrupted = self.stop_event.is_set() and pending > 0
        if interrupted:
            # Keep this fire stored: a restart within misfire_grace resumes the run.
            log.info("%s: stopped during the run as of %s; it stays resumable", name, when)
            return
        self._store_next(name, max(self._clock(), scheduled))

    def _store_next(self, name: str, after: datetime) -> None:
        following = next_fire_after(self.triggers[name], after.astimezone(self._tz))
        if following is None:
            return
        try:
            save_fire_state(
                self.store,
                name,
                schedule=self.settings.digests[name].schedule,
                next_fire_at=following,
            )
        except DatabaseError as exc:
            log.error("%s: cannot store the next fire time: %s", name, exc.message)

    # -- lifecycle --

    @property
    def started(self) -> threading.Event:
        """Set once the lease is held and every job is scheduled (for tests and callers)."""
        return self._started

    def stop(self) -> None:
        """Stop cleanly: a run in hand finishes its message and stays resumable. Thread-safe."""
        self.stop_event.set()
        # Not inline: stop() may run in a signal handler while the main loop holds its locks.
        threading.Thread(target=self._shutdown_scheduler, daemon=True).start()

    def _stop_if_asked(self) -> None:
        if self.stop_event.is_set():
            self._scheduler.shutdown(wait=False)

    def _shutdown_scheduler(self) -> None:
        scheduler = self._scheduler
        if scheduler is not None and scheduler.running:
            with contextlib.suppress(SchedulerNotRunningError):
                scheduler.shutdown(wait=False)

    def run(self, *, handle_signals: bool = False) -> None:
        """Take the lease and fire digests until stop() (or SIGTERM/SIGINT with handle_signals)."""
        self._acquire()
        previous: dict[int, Any] = {}
        keeper = threading.Thread(target=self._keep_lease, name="digest-lease", daemon=True)
        try:
            if handle_signals:
                for signum in (signal.SIGTERM, signal.SIGINT):
                    previous[signum] = signal.signal(signum, self._on_signal)
            self._executor = _FireExecutor(len(self.triggers))
            self._scheduler = BlockingScheduler(
                timezone=self._tz, executors={"default": self._executor}
            )
            # Closes the gap between checking stop_event and the scheduler running.
            self._scheduler.add_listener(
                lambda _event: self._stop_if_asked(), EVENT_SCHEDULER_START
            )
            for name in self.triggers:
                self._prepare(name, self._scheduler)
            keeper.start()
            self._started.set()
            if not self.stop_event.is_set():
                self._scheduler.start()
        finally:
            self.stop_event.set()
            self._shutdown_scheduler()
            if self._executor is not None:
                self._executor.shutdown(wait=True)  # the run in hand finishes its message
            if keeper.is_alive():
                keeper.join()
            for number, handler in previous.items():
                signal.signal(number, handler)
            if self._lease_lost_to is None:
                with contextlib.suppress(DigestError):
                    release_lease(self.store, SCHEDULER_LEASE, self.holder)
        if self._lease_lost_to is not None:
            raise SchedulerBusyError(
                f"lost the scheduler lease on {masked_url(self.store.url)} to "
                f"{self._lease_lost_to}; stopped"
            )

    def _on_signal(self, signum: int, _frame: FrameType | None) -> None:
        log.info(
            "%s received: stopping (a run in hand stays resumable)", signal.Signals(signum).name
        )
        self.stop()
