"""The categories that occur in the site's posts, for the sign-up and preferences checkboxes.

posts ─► here ─► web pages: read from disk at most once a minute, whatever the traffic.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

from digest.errors import DigestError
from digest.sources.jekyll.reader import load_posts

if TYPE_CHECKING:
    from digest.settings import SiteSettings

REFRESH_SECONDS = 60.0


def distinct_categories(names: Iterable[str]) -> list[str]:
    """Names without case-insensitive repeats (the first spelling wins), sorted as people read."""
    seen: dict[str, str] = {}
    for name in names:
        if name.strip():
            seen.setdefault(name.strip().casefold(), name.strip())
    return sorted(seen.values(), key=str.casefold)


class SiteCategories:
    """Every category of the site's published posts, re-read after REFRESH_SECONDS."""

    def __init__(
        self,
        site: SiteSettings,
        *,
        refresh_seconds: float = REFRESH_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.site = site
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
            posts = load_posts(self.site).posts
        except DigestError:
            return self._names  # the folder is unreadable right now: keep what we had
        return distinct_categories(
            category for post in posts if post.published for category in post.categories
        )
