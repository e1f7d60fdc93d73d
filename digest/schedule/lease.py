"""The scheduler's lease: one `digest schedule` per database, taken, renewed every ttl/3, released.

scheduler holds one while it runs; the lease rows themselves live in store.leases.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
from collections.abc import Callable
from datetime import datetime, timedelta, tzinfo

from digest.errors import ConfigError, DigestError, SchedulerBusyError
from digest.store import Store, masked_url
from digest.store.leases import acquire_lease, release_lease, renew_lease
from digest.store.workers import new_worker_id

log = logging.getLogger("digest.schedule.scheduler")

SCHEDULER_LEASE = "scheduler"
DEFAULT_LEASE_TTL = timedelta(seconds=30)
LEASE_TTL_ENV = "DIGEST_SCHEDULER_LEASE_TTL"


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


class SchedulerLease:
    """This process's claim to be the database's only scheduler."""

    def __init__(
        self, store: Store, *, ttl: timedelta, tz: tzinfo, clock: Callable[[], datetime]
    ) -> None:
        self.store = store
        self.ttl = ttl
        self.holder = new_worker_id()
        self.lost = False
        self._tz = tz
        self._clock = clock
        self._until: datetime | None = None

    def acquire(self) -> None:
        """Take the lease, or SchedulerBusyError naming the scheduler that holds it."""
        info = acquire_lease(self.store, SCHEDULER_LEASE, self.holder, ttl=self.ttl)
        if info.holder != self.holder:
            who = info.holder.rsplit(":", 1)[0]
            until = info.expires_at.astimezone(self._tz).isoformat(timespec="seconds")
            raise SchedulerBusyError(
                f"another scheduler ({who}) holds the lease on {masked_url(self.store.url)} "
                f"until {until}; stop it first, or wait for its lease to expire if it died"
            )
        self._until = info.expires_at

    def keep(self, stop: threading.Event, on_lost: Callable[[], None]) -> None:
        """Renew every ttl/3 until `stop` is set; call `on_lost` if another scheduler took over.

        A renewal that fails on a database error is retried while the lease is still ours.
        """
        interval = self.ttl.total_seconds() / 3
        while not stop.wait(interval):
            try:
                info = renew_lease(self.store, SCHEDULER_LEASE, self.holder, ttl=self.ttl)
            except DigestError as exc:
                log.warning("cannot renew the scheduler lease: %s", exc.message)
                if self._until is not None and self._clock() < self._until:
                    continue
                info = None
            if info is None:
                self.lost = True
                log.error("lost the scheduler lease; stopping")
                on_lost()
                return
            self._until = info.expires_at

    def release(self) -> None:
        """Give the lease back (unless it was lost); a database error here changes nothing."""
        if not self.lost:
            with contextlib.suppress(DigestError):
                release_lease(self.store, SCHEDULER_LEASE, self.holder)

    def lost_error(self) -> SchedulerBusyError:
        """The error `digest schedule` stops with after losing the lease."""
        return SchedulerBusyError(
            f"lost the scheduler lease on {masked_url(self.store.url)} to another scheduler; "
            "stopped"
        )
