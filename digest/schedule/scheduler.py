"""`digest schedule`: fire each digest on its crontab in site.timezone, once, through restarts.

A door onto delivery.send_digest; the only home of APScheduler. One scheduler per database (lease).
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import functools
import logging
import signal
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, tzinfo
from types import FrameType
from typing import Any, Protocol

from apscheduler.events import EVENT_JOB_EXECUTED, EVENT_SCHEDULER_START, JobExecutionEvent
from apscheduler.executors.base import BaseExecutor
from apscheduler.schedulers import SchedulerNotRunningError
from apscheduler.schedulers.blocking import BlockingScheduler
from apscheduler.triggers.base import BaseTrigger

from digest.bounces.scheduled import read_scheduled_bounces
from digest.crontab import (
    CrontabSchedule,
    FireTimes,
    check_crontab,
    latest_fire,
    next_fire_after,
    parse_crontab,
)
from digest.delivery.links import LinksHeldError
from digest.errors import ConfigError, DatabaseError, DigestError
from digest.local_time import LocalTimeTrigger
from digest.schedule.lease import DEFAULT_LEASE_TTL, SchedulerLease
from digest.settings import DigestSettings, Settings
from digest.settings.durations import format_duration
from digest.store import Store
from digest.store.editions import receiver_zones
from digest.store.leases import load_fire_state, save_fire_state


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
    from digest.delivery.run import send_digest

    return send_digest(settings, store, name, as_of=as_of, trigger="schedule", stop=stop)


log = logging.getLogger("digest.schedule.scheduler")

# check_links: hold: a held fire is tried again this much later, within misfire_grace.
HOLD_RETRY = timedelta(minutes=5)


class DigestTrigger(CrontabSchedule, BaseTrigger):  # type: ignore[misc]
    """A CrontabSchedule as an APScheduler trigger (standard crontab meaning, sane DST)."""

    __slots__ = ()


class LocalDigestTrigger(LocalTimeTrigger, BaseTrigger):  # type: ignore[misc]
    """A LocalTimeTrigger as an APScheduler trigger: the wall time in each subscriber zone."""


def build_trigger(expression: str, tz: tzinfo) -> DigestTrigger:
    """The trigger for a crontab in a zone; ValueError if it is invalid or never fires."""
    return DigestTrigger(check_crontab(expression, tz), tz)


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


@dataclass(frozen=True)
class UpcomingFire:
    """A digest's next fire time, for `schedule --dry-run`."""

    digest: str
    next_fire_at: datetime
    schedule: str
    timezone: str


def upcoming_fires(
    settings: Settings, now: datetime, zones: Mapping[str, Iterable[str]] | None = None
) -> list[UpcomingFire]:
    """Each digest's next fire after `now`, in site.timezone; reads and writes nothing.

    `zones`: for deliver: local_time digests, the subscriber zones by digest (the next fire
    is then the first of those zones to reach the schedule's wall time).
    """
    fires = []
    for name, trigger in validate_schedules(settings).items():
        digest = settings.digests[name]
        where = settings.site.timezone
        found = set((zones or {}).get(name, ()))
        if digest.deliver == "local_time" and found:
            local = LocalTimeTrigger(parse_crontab(digest.schedule), found.copy, settings.site.tz)
            at = local.get_next_fire_time(None, now.astimezone(settings.site.tz))
            where = "local time in " + ", ".join(sorted(found))
        else:
            at = trigger.get_next_fire_time(None, now.astimezone(settings.site.tz))
        if at is not None:
            fires.append(UpcomingFire(name, at, digest.schedule, where))
    return fires


# --- running -------------------------------------------------------------------------------


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
        hold_retry: timedelta = HOLD_RETRY,
        triggers: Mapping[str, FireTimes] | None = None,
        bounce_trigger: FireTimes | None = None,
    ) -> None:
        self.settings = settings
        self.store = store
        # `triggers` replaces the crontab triggers (tests use a seconds-interval trigger).
        self.triggers: dict[str, FireTimes] = dict(validate_schedules(settings))
        for name, digest in settings.digests.items():
            if digest.deliver == "local_time":
                self.triggers[name] = self._local_time_trigger(digest)
        self.triggers.update(triggers or {})
        # bounces.schedule: read the bounce mailbox on its own crontab (no catch-up needed:
        # the next read takes whatever arrived meanwhile).
        schedule = settings.bounces.schedule
        self.bounce_trigger: FireTimes | None = bounce_trigger or (
            build_trigger(schedule, settings.site.tz) if schedule else None
        )
        self.stop_event = threading.Event()
        self.hold_retry = hold_retry  # check_links: hold tries again this much later
        self._run_digest = run_digest
        self._clock = clock or (lambda: datetime.now(UTC))
        self._tz = settings.site.tz
        self._lease = SchedulerLease(store, ttl=lease_ttl, tz=self._tz, clock=self._clock)
        self._digest_locks = {name: threading.Lock() for name in settings.digests}
        self._scheduler: Any = None
        self._executor: _FireExecutor | None = None
        self._started = threading.Event()

    def _local_time_trigger(self, digest: DigestSettings) -> LocalDigestTrigger:
        """deliver: local_time: fire as each subscriber zone reaches the crontab's wall time."""
        site_zone = self.settings.site.timezone

        def zones() -> set[str]:
            with self.store.session() as session:
                found = receiver_zones(session, digest.name, site_zone, self._clock())
            return found or {site_zone}

        return LocalDigestTrigger(parse_crontab(digest.schedule), zones, self.settings.site.tz)

    # -- lease --

    @property
    def holder(self) -> str:
        """This process's lease holder id, `host:pid:random`."""
        return self._lease.holder

    def _keep_lease(self) -> None:
        self._lease.keep(self.stop_event, on_lost=self.stop)
        if not self._lease.lost:
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

    def _resume(self, name: str, as_of: datetime, run_time: datetime | None = None) -> None:
        """The relay's quota freed up: go on with the fire as of `as_of` (its unfinished run)."""
        self._fire(name, as_of, due=run_time)

    def _resume_later(self, name: str, as_of: datetime, resume_at: datetime) -> None:
        """A per-hour or per-day limit of the relay is used up: resume the fire once it frees."""
        if self._scheduler is None:
            return
        self._scheduler.add_job(
            self._resume,
            trigger="date",
            run_date=resume_at,
            args=(name, as_of),
            id=f"{name}:resume",
            name=f"digest {name} (resumed)",
            replace_existing=True,
        )
        log.info("%s: sending resumes at %s", name, _iso(resume_at, self._tz))

    def _fire(
        self, name: str, scheduled: datetime | None = None, *, due: datetime | None = None
    ) -> None:
        # `scheduled` is always given by _FireExecutor; the default satisfies add_job's check.
        # `due`: a resumed fire (_resume) counts its grace from when it was due to resume.
        if scheduled is None or self.stop_event.is_set():
            return
        digest = self.settings.digests[name]
        when = _iso(scheduled, self._tz)
        now = self._clock()
        if now - (due or scheduled) > digest.misfire_grace:
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
            except LinksHeldError as exc:
                # check_links: hold. Try again a little later while misfire_grace lasts; the
                # fire stays stored, so a restart within the grace tries again too.
                retry_at = self._clock() + self.hold_retry
                if retry_at - scheduled <= digest.misfire_grace and self._scheduler is not None:
                    log.warning(
                        "%s; retrying at %s (misfire_grace %s ends at %s)",
                        exc.message,
                        _iso(retry_at, self._tz),
                        format_duration(digest.misfire_grace),
                        _iso(scheduled + digest.misfire_grace, self._tz),
                    )
                    self._scheduler.add_job(
                        self._retry,
                        trigger="date",
                        run_date=retry_at,
                        args=(name, scheduled),
                        id=f"{name}-hold",
                        replace_existing=True,
                        misfire_grace_time=max(1, int(digest.misfire_grace.total_seconds())),
                    )
                    return
                log.error(
                    "%s; gave up for the fire at %s (misfire_grace %s is over)",
                    exc.message,
                    when,
                    format_duration(digest.misfire_grace),
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
                resume_at = getattr(exc, "resume_at", None)  # delivery.limits.QuotaReached
                if isinstance(resume_at, datetime) and not interrupted:
                    self._resume_later(name, scheduled, resume_at)
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

    def _retry(self, name: str, scheduled: datetime, _fired: datetime | None = None) -> None:
        """A held fire tried again (check_links: hold), as of its own scheduled time."""
        self._fire(name, scheduled)

    def _read_bounces(self, scheduled: datetime | None = None) -> None:
        if not self.stop_event.is_set():
            read_scheduled_bounces(self.settings, self.store)

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
        self._lease.acquire()
        previous: dict[int, Any] = {}
        keeper = threading.Thread(target=self._keep_lease, name="digest-lease", daemon=True)
        try:
            if handle_signals:
                for signum in (signal.SIGTERM, signal.SIGINT):
                    previous[signum] = signal.signal(signum, self._on_signal)
            self._executor = _FireExecutor(len(self.triggers) + 1)
            self._scheduler = BlockingScheduler(
                timezone=self._tz, executors={"default": self._executor}
            )
            # Closes the gap between checking stop_event and the scheduler running.
            self._scheduler.add_listener(
                lambda _event: self._stop_if_asked(), EVENT_SCHEDULER_START
            )
            for name in self.triggers:
                self._prepare(name, self._scheduler)
            if self.bounce_trigger is not None:
                self._scheduler.add_job(
                    self._read_bounces,
                    trigger=self.bounce_trigger,
                    id="bounces",
                    name="digest bounces",
                    coalesce=True,
                    max_instances=1,
                    replace_existing=True,
                )
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
            self._lease.release()
        if self._lease.lost:
            raise self._lease.lost_error()

    def _on_signal(self, signum: int, _frame: FrameType | None) -> None:
        log.info(
            "%s received: stopping (a run in hand stays resumable)", signal.Signals(signum).name
        )
        self.stop()
