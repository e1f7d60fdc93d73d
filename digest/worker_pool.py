"""`digest send --workers N`: N sender processes on this machine share one run.

delivery ─► worker_pool ─► sending (in each process); the processes split the run by the claim
protocol of store.claims, as senders on several machines do against one PostgreSQL.

smtp.max_connections and smtp.rate_limit stay totals for the machine: each process gets its
share of them (at least one connection).
"""

from __future__ import annotations

import logging
import multiprocessing
import threading
from concurrent.futures import ProcessPoolExecutor, wait

from digest.config import Settings
from digest.errors import DigestError
from digest.sending import Progress, RunSender
from digest.store import open_store, runs

log = logging.getLogger(__name__)

PROGRESS_EVERY = 0.5  # seconds between looks at the run for the progress bar


def share(settings: Settings, workers: int) -> Settings:
    """The settings of one of `workers` processes: its share of connections and rate."""
    smtp = settings.smtp.model_copy(
        update={
            "max_connections": max(1, settings.smtp.max_connections // workers),
            "rate_limit": settings.smtp.rate_limit / workers,
        }
    )
    return settings.model_copy(update={"smtp": smtp})


def _work(settings: Settings, digest: str, run_id: int) -> tuple[str, str | None, int] | None:
    """One process's share of the run; an expected failure comes back as (message, hint, code)."""
    logging.basicConfig(level=logging.WARNING)
    store = open_store(settings.database.url)
    sender = RunSender(settings, store, settings.digest(digest), progress=None, stop=None)
    try:
        sender.send_run(run_id, resumed=True)
    except DigestError as exc:
        return exc.message, exc.hint, exc.exit_code
    finally:
        sender.close()
        store.dispose()
    return None


def send_in_processes(
    settings: Settings,
    digest: str,
    run_id: int,
    workers: int,
    *,
    progress: Progress | None,
    stop: threading.Event | None = None,
) -> None:
    """Send the run with `workers` processes; the first expected failure of one is raised.

    `stop` is not passed on: a stopped parent's workers finish the run (each message once).
    """
    del stop
    mine = share(settings, workers)
    # spawn: a fresh interpreter, nothing inherited from this one's threads and connections.
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
        futures = [pool.submit(_work, mine, digest, run_id) for _ in range(workers)]
        store = open_store(settings.database.url) if progress is not None else None
        try:
            while wait(futures, timeout=PROGRESS_EVERY).not_done:
                if store is not None and progress is not None:
                    with store.session() as session:
                        counts = runs.run_counts(session, run_id)
                    left = counts["pending"] + counts["sending"]
                    progress(sum(counts.values()) - left, sum(counts.values()))
        finally:
            if store is not None:
                store.dispose()
        failures = [failure for f in futures if (failure := f.result()) is not None]
    if failures:
        message, hint, code = failures[0]
        error = DigestError(message, hint=hint)
        error.exit_code = code
        raise error
