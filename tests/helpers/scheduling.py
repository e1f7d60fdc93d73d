"""A scheduler running in a thread for the length of a with block."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

from digest.schedule.scheduler import Scheduler

WAIT = 15.0  # seconds: an upper bound for events, never a timing assertion


class Running:
    """A Scheduler.run() in a thread; `error` is what run() raised."""

    def __init__(self, scheduler: Scheduler) -> None:
        self.scheduler = scheduler
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        try:
            self.scheduler.run()
        except BaseException as exc:
            self.error = exc

    def __enter__(self) -> Running:
        self.thread.start()
        deadline = datetime.now(UTC) + timedelta(seconds=WAIT)
        while not self.scheduler.started.wait(0.05):
            assert self.thread.is_alive(), f"scheduler ended early: {self.error!r}"
            assert datetime.now(UTC) < deadline, "scheduler did not start"
        return self

    def __exit__(self, *exc: object) -> None:
        self.scheduler.stop()
        self.thread.join(WAIT)
        assert not self.thread.is_alive(), "scheduler did not stop"
