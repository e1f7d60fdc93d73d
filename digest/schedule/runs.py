"""What a scheduled fire runs: the RunDigest job shape and its default, send_scheduled.

scheduler ─► scheduled_runs ─► delivery.send_digest (trigger="schedule"), as `digest send` runs it.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from datetime import datetime
from typing import Protocol

from digest.settings import Settings
from digest.store import Store


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
