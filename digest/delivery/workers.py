"""`digest send --workers N`: N sender processes on this machine share one run.

delivery ─► worker_pool ─► sending (in each process); the processes split the run by the claim
protocol of store.claims, as senders on several machines do against one PostgreSQL.

smtp.max_connections stays a total for the machine: each process gets its
share of them (at least one connection).

This process is one of the N: its share starts at once. The N - 1 others are forked when
`send` starts, before this process has a thread, so they start with the sending code already
imported (Linux). Elsewhere, or when the caller has threads of its own, they come from a fork
server that imports the code once. A fresh interpreter per process (spawn, as before) imported
it again in each, ~3 s of CPU apiece: that made two and four workers slower than one below
~100,000 subscribers. Ctrl-C reaches only this process (the others ignore SIGINT): `stop` is
passed on, and each process finishes the message on the wire, records it and gives back the
rest of its claims.
"""

from __future__ import annotations

import logging
import multiprocessing
import signal
import sys
import threading
import time
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from multiprocessing.context import BaseContext
from typing import Any

from digest.delivery.sending import Progress, RunSender
from digest.errors import DigestError
from digest.settings import Settings
from digest.store import open_store, runs

log = logging.getLogger(__name__)

STOP_EVERY = 0.25  # seconds between looks at the senders and at `stop`
PROGRESS_EVERY = 0.5  # seconds between counts of the run for the progress bar, at least
# A count of a big run's deliveries is not free (a million rows: ~0.1 s of the database's
# time); the bar counts again after this many times the last count's duration, if longer.
PROGRESS_COST_RATIO = 20
# What a sender process imports, imported once by the fork server (and the database driver).
PRELOAD = ["digest.delivery.workers", "digest.cli"]
PRELOAD_POSTGRESQL = ["psycopg", "sqlalchemy.dialects.postgresql.psycopg"]

_parent_stop: Any = None  # in a sender process: set when the parent stops


def share(settings: Settings, workers: int) -> Settings:
    """The settings of one of `workers` processes: its share of connections (the relay's rates
    are shared through the store by every process, on every machine)."""
    relays = tuple(
        relay.model_copy(update={"max_connections": max(1, relay.max_connections // workers)})
        for relay in settings.relays
    )
    return settings.model_copy(update={"smtp": relays[0], "relays": relays})


def _context(database_url: str) -> BaseContext:
    """fork when that is safe (Linux, no other thread yet), else a fork server, else spawn."""
    methods = multiprocessing.get_all_start_methods()
    if sys.platform == "linux" and threading.active_count() == 1:
        return multiprocessing.get_context("fork")
    if "forkserver" not in methods:
        return multiprocessing.get_context("spawn")
    context = multiprocessing.get_context("forkserver")
    preload = PRELOAD + (PRELOAD_POSTGRESQL if database_url.startswith("postgresql") else [])
    context.set_forkserver_preload(preload)  # no effect once the server runs (same list)
    return context


def _ready() -> None:
    """A task that does nothing: submitting it starts the processes."""


def _init(stop: Any) -> None:
    """A sender process: Ctrl-C (sent to the whole terminal group) is the parent's to handle."""
    global _parent_stop
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _parent_stop = stop


def _watch(parent: Any, stop: threading.Event, done: threading.Event) -> None:
    """Pass the parent's stop on to this process's sending threads."""
    while not done.wait(STOP_EVERY):
        if parent.value:
            stop.set()
            return


def _work(settings: Settings, digest: str, run_id: int) -> tuple[str, str | None, int] | None:
    """One process's share of the run; an expected failure comes back as (message, hint, code)."""
    logging.basicConfig(level=logging.WARNING)
    stop, done = threading.Event(), threading.Event()
    if _parent_stop is not None:
        watcher = threading.Thread(
            target=_watch, args=(_parent_stop, stop, done), name="digest-stop", daemon=True
        )
        watcher.start()
    store = open_store(settings.database.url, upgrade=False)  # the parent brought it up to date
    try:
        sender = RunSender(settings, store, settings.digest(digest), progress=None, stop=stop)
        try:
            sender.send_run(run_id, resumed=True)
        except DigestError as exc:
            return exc.message, exc.hint, exc.exit_code
        finally:
            sender.close()
    finally:
        done.set()
        store.dispose()
    return None


class SenderProcesses:
    """The other `workers - 1` sender processes of one `send`: started at once, used per run."""

    def __init__(self, settings: Settings, workers: int) -> None:
        self.settings = settings
        self.workers = workers
        self.context = _context(settings.database.url)
        # Set to 1: the processes stop. A flag in shared memory, looked at every STOP_EVERY: a
        # multiprocessing Event is a Condition, and setting one whose waiter was killed (a
        # SIGKILL, the OOM killer) waits forever for that waiter to wake.
        self.stopping: Any = self.context.RawValue("b", 0)  # made before the processes
        self.dead: set[int] = set()  # the pids of those that died, told once
        self.pool = ProcessPoolExecutor(
            max_workers=workers - 1,
            mp_context=self.context,
            initializer=_init,
            initargs=(self.stopping,),
        )
        if self.context.get_start_method() == "fork":
            self.pool.submit(_ready)  # forks them all now, before this process has threads
        elif self.context.get_start_method() == "forkserver":
            from multiprocessing import forkserver

            forkserver.ensure_running()  # it imports the sending code while the run is made

    def close(self) -> None:
        self.stopping.value = 1  # nothing is left for them (or the caller is stopping)
        self.pool.shutdown(wait=True, cancel_futures=True)

    def send(self, sender: RunSender, run_id: int, *, progress: Progress | None) -> None:
        """Send the run with every process, this one (through `sender`) among them.

        The first expected failure of one is raised once all have stopped. `sender.stop` set:
        each process finishes the message on the wire and stops (the run stays open).
        """
        mine = share(self.settings, self.workers)
        others = _Others(self.pool, (mine, sender.digest.name, run_id), self.workers - 1)
        others.start()  # a fork server may keep it waiting: in its own thread
        done = threading.Event()
        overseer = threading.Thread(
            target=_oversee,
            args=(sender, run_id, progress, self.stopping, done),
            name="digest-oversee",
            daemon=True,
        )
        overseer.start()
        own = RunSender(
            mine,
            sender.store,
            sender.digest,
            progress=None,
            stop=sender.stop,
            as_of=sender.as_of,
            posts=sender.posts(),
        )
        failures: list[tuple[str, str | None, int]] = []
        try:
            own.send_run(run_id, resumed=True)
        except DigestError as exc:
            failures.append((exc.message, exc.hint, exc.exit_code))
        except BaseException:  # KeyboardInterrupt, a bug: the other senders stop too
            self.stopping.value = 1
            raise
        finally:
            if sender.stop.is_set():
                self.stopping.value = 1
            own.close()
            others.join()
            done.set()
            overseer.join()
        if isinstance(others.error, BrokenProcessPool):
            # One died (SIGKILL, the OOM killer; the pool then ends the others): this process
            # took over their claims (store.workers: a dead pid here, read their journals) and
            # sent the rest; the run is as complete as this process's send made it.
            self._tell_dead()
        elif others.error is not None:
            raise others.error
        failures += others.failures
        if failures:
            message, hint, code = failures[0]
            error = DigestError(message, hint=hint)
            error.exit_code = code
            raise error

    def _tell_dead(self) -> None:
        processes = getattr(self.pool, "_processes", None) or {}
        for pid, process in list(processes.items()):
            code = process.exitcode
            if pid in self.dead or code is None or code == 0:
                continue
            self.dead.add(pid)
            how = f"killed by {signal.Signals(-code).name}" if code < 0 else f"exit status {code}"
            log.warning(
                "sender process %d died (%s); this process took over its deliveries", pid, how
            )
        if not self.dead:
            log.warning("a sender process died; this process took over its deliveries")


class _Others(threading.Thread):
    """Hands the run to the other processes and waits for them (off the caller's thread)."""

    def __init__(self, pool: ProcessPoolExecutor, args: tuple[Settings, str, int], count: int):
        super().__init__(name="digest-workers", daemon=True)
        self.pool, self.args, self.count = pool, args, count
        self.failures: list[tuple[str, str | None, int]] = []
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            futures = [self.pool.submit(_work, *self.args) for _ in range(self.count)]
            self.failures = [failure for f in futures if (failure := f.result()) is not None]
        except BaseException as exc:  # a process that died (BrokenProcessPool): raised above
            self.error = exc


def _oversee(
    sender: RunSender,
    run_id: int,
    progress: Progress | None,
    stopping: Any,
    done: threading.Event,
) -> None:
    """Pass a stop on to the sender processes, and count the run for the progress bar."""
    next_count = 0.0
    while not done.wait(STOP_EVERY):
        if sender.stop.is_set():
            stopping.value = 1
        if progress is None or time.monotonic() < next_count:
            continue
        began = time.monotonic()
        try:
            with sender.store.session() as session:
                counts = runs.run_counts(session, run_id)
        except DigestError as exc:  # the senders meet it too, and say so
            log.warning("could not count run %s: %s", run_id, exc)
            continue
        took = time.monotonic() - began
        next_count = began + max(PROGRESS_EVERY, PROGRESS_COST_RATIO * took)
        left = counts["pending"] + counts["sending"]
        progress(sum(counts.values()) - left, sum(counts.values()))
