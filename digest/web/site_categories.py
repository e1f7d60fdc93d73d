"""The categories that occur in the site's posts, for the sign-up and preferences checkboxes.

sources (any kind of site) ─► here ─► web pages: read at most once a minute, whatever the
traffic.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from digest.errors import DigestError

if TYPE_CHECKING:
    from digest.sources import Source

REFRESH_SECONDS = 60.0


class SiteCategories:
    """Every category of the site's published posts, re-read after REFRESH_SECONDS."""

    def __init__(
        self,
        source: Source,
        *,
        refresh_seconds: float = REFRESH_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.source = source
        self.refresh_seconds = refresh_seconds
        self.clock = clock
        self._lock = threading.Lock()
        self._names: list[str] = []
        self._read_at: float | None = None

    def __call__(self) -> list[str]:
        """The categories, as of at most refresh_seconds ago."""
        with self._lock:
            now = self.clock()
            if self._read_at is None or now - self._read_at >= self.refresh_seconds:
                self._names = self._read()
                self._read_at = now
            return list(self._names)

    def _read(self) -> list[str]:
        try:
            return self.source.categories(now=datetime.now(UTC))
        except DigestError:
            return self._names  # the site is unreadable right now: keep what we had
