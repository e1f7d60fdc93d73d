"""The categories that occur in the site's posts, for the sign-up and preferences checkboxes.

sources (any kind of site) ─► here ─► web pages. Posts are read outside every request: once
when the app is made, then by a background thread every REFRESH_SECONDS; a request only reads
the list that is there, so a slow or hostile post never holds a request thread.
"""

from __future__ import annotations

import logging
import threading
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from digest.errors import DigestError

if TYPE_CHECKING:
    from digest.sources import Source

log = logging.getLogger("digest.web")

REFRESH_SECONDS = 60.0


class SiteCategories:
    """Every category of the site's published posts, as of the last read (at most
    refresh_seconds ago while the refresher runs)."""

    def __init__(self, source: Source, *, refresh_seconds: float = REFRESH_SECONDS) -> None:
        self.source = source
        self.refresh_seconds = refresh_seconds
        self._names: tuple[str, ...] = ()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._start_lock = threading.Lock()

    def __call__(self) -> list[str]:
        """The categories as last read; never reads posts (a request calls this)."""
        return list(self._names)

    def refresh(self) -> None:
        """Read the site's categories now (the app's start and the refresher call this)."""
        try:
            names = self.source.categories(now=datetime.now(UTC))
        except DigestError as exc:
            log.warning("categories not re-read (the last ones stay): %s", exc.message)
            return  # the site is unreadable right now: keep what we had
        self._names = tuple(names)  # one reference swap: a request sees the old or the new

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> None:
        """Re-read every refresh_seconds in a daemon thread, until stop()."""
        with self._start_lock:
            if self.running:
                return
            self._stop.clear()
            self._thread = threading.Thread(target=self._run, name="digest-categories", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def _run(self) -> None:
        while not self._stop.wait(self.refresh_seconds):
            self.refresh()
