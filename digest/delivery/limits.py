"""A relay's rules as one sender process keeps them: slots of the relay's rates booked a few at
a time from the store (shared with every other sender), each destination's limits booked apart
(so a slow provider holds back nobody else), and this process's slowdown when throttled.

delivery.connection ─► delivery.limits ─► store.rates (shared slots), smtp.rate_limit (pure).
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from datetime import datetime, timedelta

from digest.errors import SmtpError
from digest.settings.smtp import Rate, SmtpSettings
from digest.smtp.rate_limit import WAIT_TO_TELL, Slowdown, destination_of
from digest.store import Store, rates
from digest.store.models import utcnow

log = logging.getLogger("digest.delivery")

PACED_UP_TO = 60.0  # seconds: rates per second and per minute are paces, longer ones quotas
BOOK_AHEAD = 0.025  # seconds of the fastest pace booked at once (200/s: 5 slots a booking)
MAX_BOOKING = 16
# A destination whose next slot is further away than this lets the message wait (others go
# first); slots are booked only by a message about to go, so none is wasted.
EARLY_AT_MOST = 0.01


class QuotaReached(SmtpError):
    """A per-hour or per-day limit of the relay is used up: the rest waits until `resume_at`."""

    def __init__(self, message: str, *, resume_at: datetime, hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.resume_at = resume_at


def shared_limits(key: str, limits: tuple[Rate, ...]) -> tuple[list[rates.Pace], list[rates.Quota]]:
    """A relay's (or destination's) rates as store.rates keeps them.

    A pace of N per window allows bursts of B = max(1, 3% of N) and leaves room for J = 2% of
    N slots used late (a busy machine); it spaces slots by window / (N - B - J + 1), so no
    window ever holds more than N and a big list runs within 5% of N; a quota counts what was
    booked in the window.
    """
    paces: list[rates.Pace] = []
    quotas: list[rates.Quota] = []
    for index, rate in enumerate(limits):
        name = f"{key}#{index}:{rate.text}"
        if rate.seconds <= PACED_UP_TO:
            burst = max(1, int(rate.limit * 0.03))
            jitter = int(rate.limit * 0.02)
            interval = rate.seconds / (rate.limit - burst - jitter + 1)
            paces.append(rates.Pace(name, interval, burst, jitter))
        else:
            quotas.append(rates.Quota(name, max(int(rate.limit), 1), rate.seconds))
    return paces, quotas


class RelayLimits:
    """One process's turnstile onto one relay, shared by its connections (thread-safe)."""

    def __init__(self, store: Store, relay: SmtpSettings, connections: int) -> None:
        self.store = store
        self.relay = relay
        self.key = f"relay:{relay.name}"
        self.paces, self.quotas = shared_limits(self.key, relay.rate_limit)
        fastest = max((1.0 / p.interval for p in self.paces), default=0.0)
        # How late a booked slot may still be used: the pace leaves room for this much.
        self.late = min((p.interval * (p.jitter + 1) for p in self.paces), default=0.0)
        self.batch = max(1, min(MAX_BOOKING, int(fastest * BOOK_AHEAD)))
        self.slowdown = Slowdown(connections)
        self.destinations = {
            name: shared_limits(f"{self.key}:{name}", limits)
            for name, limits in relay.destination_limits.items()
        }
        self._lock = threading.Lock()
        self._slots: deque[float] = deque()  # booked relay slots (time.monotonic)
        self._quota_left = 0  # messages booked on the quotas, not yet sent
        self._next_free: dict[str, float] = {}  # destination -> its next slot (a guess)
        self._dest_locks = {name: threading.Lock() for name in self.destinations}

    def wait_turn(self, index: int, stop: threading.Event) -> None:
        """Hold connection `index` while a throttling relay gets fewer connections."""
        while index >= self.slowdown.allowed() and not stop.is_set():
            stop.wait(0.05)

    def quota(self) -> None:
        """Count one more message on the relay's per-hour and per-day limits (booked a few at
        a time); QuotaReached when one is used up."""
        if not self.quotas:
            return
        with self._lock:
            if self._quota_left == 0:
                booking = rates.book(self.store, [], self.quotas, self.batch)
                if not booking.delays:
                    raise self._quota_reached(booking.full_for or 0.0)
                self._quota_left = len(booking.delays)
            self._quota_left -= 1

    def pace(self, stop: threading.Event) -> None:
        """Wait for this process's next slot of the relay's paces (and of its own slowdown)."""
        gap = self.slowdown.pace()
        at = time.monotonic()
        if self.paces:
            with self._lock:
                while True:
                    if not self._slots:
                        booking = rates.book(self.store, self.paces, [], self.batch)
                        base = time.monotonic()
                        self._slots.extend(base + delay for delay in booking.delays)
                    at = self._slots.popleft()
                    if time.monotonic() - at <= self.late:
                        break
                    # Too late to use (this process was held up): used now, it could make a
                    # burst past the limit with the slots after it. Given up; no harm but speed.
        wait = max(at - time.monotonic(), gap)
        if wait > WAIT_TO_TELL:  # a silent wait looks like a hang: one line says until when
            until = datetime.now().astimezone() + timedelta(seconds=wait)
            rates_text = ", ".join(r.text for r in self.relay.rate_limit) or "slowed down"
            log.warning(
                "waiting until %s for a sending slot (relay %s: %s)",
                until.isoformat(timespec="seconds"),
                self.relay.name,
                self.slowdown.describe() or rates_text,
            )
        if wait > 0:
            stop.wait(wait)

    def destination_busy(self, address: str) -> bool:
        """The address's destination has no slot for a while (send the others first)."""
        return self.destination_wait_hint(address) > EARLY_AT_MOST

    def destination_quota(self, address: str) -> float:
        """Count one message on the address's destination's per-hour and per-day limits, before
        its envelope goes: 0 when counted; else the seconds until one frees (nothing counted)."""
        name = destination_of(address, self.destinations)
        if name is None or not self.destinations[name][1]:
            return 0.0
        with self._dest_locks[name]:
            booking = rates.book(self.store, [], self.destinations[name][1], 1)
        if booking.delays:
            return 0.0
        return max(booking.full_for or 0.0, 1.0)

    def destination_text(self, address: str) -> str:
        """`example.org (500/day)`: the address's destination and its limits, for messages."""
        name = destination_of(address, self.destinations) or address.rsplit("@", 1)[-1]
        limits = self.relay.destination_limits.get(name, ())
        return f"{name} ({', '.join(r.text for r in limits)})" if limits else name

    def destination_wait(self, address: str, *, hold: bool = True) -> float:
        """Book a slot of the address's destination's paces and wait for it (its per-hour and
        per-day limits were counted by destination_quota); 0 once it is here."""
        name = destination_of(address, self.destinations)
        if name is None or not self.destinations[name][0]:
            return 0.0
        paces = self.destinations[name][0]
        with self._dest_locks[name]:
            booking = rates.book(self.store, paces, [], 1)
            if not booking.delays:
                return max(booking.full_for or 0.0, 1.0)
            slot = time.monotonic() + booking.delays[0]
            self._next_free[name] = slot + min((p.interval for p in paces), default=0.0)
        wait = slot - time.monotonic()
        if wait > 0:
            time.sleep(wait)
        return 0.0

    def destination_wait_hint(self, address: str) -> float:
        """Seconds until the address's destination is likely to have a slot (nothing booked)."""
        name = destination_of(address, self.destinations)
        if name is None:
            return 0.0
        return max(self._next_free.get(name, 0.0) - time.monotonic(), 0.0)

    def destination_gap(self, address: str) -> float:
        """Seconds between two slots of the address's destination (0: none)."""
        name = destination_of(address, self.destinations)
        if name is None:
            return 0.0
        return max((p.interval for p in self.destinations[name][0]), default=0.0)

    def _quota_reached(self, full_for: float) -> QuotaReached:
        resume_at = utcnow() + timedelta(seconds=full_for)
        texts = ", ".join(r.text for r in self.relay.rate_limit if r.seconds > PACED_UP_TO)
        return QuotaReached(
            f"relay {self.relay.name}: smtp.rate_limit {texts} reached; sending resumes at "
            f"{resume_at:%Y-%m-%d %H:%M} UTC",
            resume_at=resume_at,
        )

    def describe(self) -> str:
        """The relay, the rate now and any throttling, for the progress line."""
        slow = self.slowdown.describe()
        rate = f"{self.slowdown.current_rate():.0f}/s"
        return f"{self.relay.name} {rate}" + (f" ({slow})" if slow else "")
