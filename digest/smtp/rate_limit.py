"""Spacing sends evenly over every connection of a process: smtp.rate_limit messages a second.

smtp and sending ─► rate_limit: one limiter per process, shared by its connections.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from datetime import datetime, timedelta

log = logging.getLogger(__name__)

WAIT_TO_TELL = 2.0  # seconds: a longer wait for a slot prints one line saying until when


class RateLimiter:
    """Spaces message sends evenly over all connections (thread-safe; 0 = unlimited)."""

    def __init__(
        self,
        per_second: float,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.per_second = per_second
        self._interval = 1.0 / per_second if per_second > 0 else 0.0
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()
        self._next = 0.0

    def reserve(self) -> float:
        """Book the next slot and return how long the caller must wait for it (seconds)."""
        if not self._interval:
            return 0.0
        with self._lock:
            now = self._clock()
            slot = max(now, self._next)
            self._next = slot + self._interval
            return slot - now

    def acquire(self) -> None:
        """Wait for the next slot (a wait over WAIT_TO_TELL says so, in one line)."""
        wait = self.reserve()
        if wait > WAIT_TO_TELL:
            until = datetime.now().astimezone() + timedelta(seconds=wait)
            log.warning(
                "waiting until %s for a sending slot (smtp.rate_limit: %g a second)",
                until.isoformat(timespec="seconds"),
                self.per_second,
            )
        if wait > 0:
            self._sleep(wait)
