"""Rates within one process: even spacing (RateLimiter), slowing down when a relay throttles
(Slowdown), and which provider group an address's domain belongs to (destination_of).

delivery ─► smtp.rate_limit: pure; the rates shared by every process live in store.rates.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable, Collection
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


# Provider groups for smtp.destination_limits: a key that is not a group is a domain.
# A pattern ending in ".*" stands for that name under any top-level domain (hotmail.co.uk).
PROVIDER_GROUPS: dict[str, tuple[str, ...]] = {
    "google": ("gmail.com", "googlemail.com"),
    "microsoft": ("outlook.com", "hotmail.*", "live.*", "msn.com"),
    "yahoo": ("yahoo.*", "ymail.com", "aol.com"),
    "apple": ("icloud.com", "me.com", "mac.com"),
}


def _in_group(domain: str, patterns: tuple[str, ...]) -> bool:
    for pattern in patterns:
        if pattern.endswith(".*"):
            if domain.startswith(pattern[:-1]):
                return True
        elif domain == pattern:
            return True
    return False


def destination_of(address: str, keys: Collection[str]) -> str | None:
    """The key of smtp.destination_limits an address falls under (its domain, else its group)."""
    if not keys:
        return None
    domain = address.rsplit("@", 1)[-1].strip().lower().rstrip(".")
    if domain in keys:
        return domain
    for group, patterns in PROVIDER_GROUPS.items():
        if group in keys and _in_group(domain, patterns):
            return group
    return None


class Slowdown:
    """How hard a relay throttles this process: fewer connections, a lower rate, backoff.

    Each throttling reply halves the rate (from what was being sent) and the connections in
    use, and lengthens the backoff (exponential, with jitter); every CLIMB_AFTER clean replies
    the rate climbs back by a quarter, until it is no longer in the way. With no reply at all
    for RELAX_AFTER (the connections still allowed have nothing left to send, while the
    others wait for their turn with messages in hand) it climbs back all the same: otherwise
    nothing would ever let the waiting connections go.
    """

    CLIMB_AFTER = 20  # clean replies, or
    CLIMB_EVERY = 0.5  # seconds of clean replies, whichever comes first
    FIRST_BACKOFF = 0.1  # seconds
    MAX_BACKOFF = 30.0
    MIN_RATE = 5.0  # messages a second, at the slowest (the backoff slows a relay further)
    RELAX_AFTER = 1.0  # seconds without any reply after which the level climbs back one

    def __init__(
        self,
        connections: int,
        *,
        clock: Callable[[], float] = time.monotonic,
        jitter: Callable[[], float] = random.random,
    ) -> None:
        self.connections = connections
        self._clock = clock
        self._jitter = jitter
        self._lock = threading.Lock()
        self.level = 0  # throttles not yet climbed back from
        self.rate: float | None = None  # messages a second allowed now (None: no cap of ours)
        self.peak = 0.0  # the rate when throttling began
        self._clean = 0
        self._changed = 0.0  # when the rate last changed
        self._replied = 0.0  # when the relay last took a message
        self._sent: list[float] = []  # when the last messages went (to know the rate)
        self.reason = ""
        self._limiter: RateLimiter | None = None

    def _recent_rate(self, now: float) -> float:
        self._sent = [t for t in self._sent if now - t <= 1.0]
        return float(len(self._sent))

    def throttled(self, reason: str, *, streak: int = 0) -> float:
        """The relay said slow down: returns how long the connection that heard it waits.

        The backoff doubles with `streak`, the throttles that connection heard in a row (the
        process's level when none is given): a connection hearing its first throttle after a
        burst on the others waits FIRST_BACKOFF, not the burst's 30 s."""
        with self._lock:
            now = self._clock()
            current = self.rate if self.rate is not None else self._recent_rate(now)
            if self.level == 0:
                self.peak = max(current, 1.0)
            self.level = min(self.level + 1, 12)
            self.rate = max(current / 2, self.MIN_RATE)
            self._limiter = RateLimiter(self.rate)
            self._clean = 0
            self._changed = now
            self.reason = reason
            times = streak if streak > 0 else self.level
            backoff: float = min(self.FIRST_BACKOFF * 2.0 ** (times - 1), self.MAX_BACKOFF)
            return backoff * (0.5 + self._jitter())

    def clean(self) -> None:
        """A message the relay took: now and then the rate climbs back."""
        with self._lock:
            now = self._clock()
            self._sent.append(now)
            if len(self._sent) > 4096:
                del self._sent[:2048]
            self._replied = now
            if self.rate is None:
                return
            self._clean += 1
            if self._clean < self.CLIMB_AFTER and now - self._changed < self.CLIMB_EVERY:
                return
            self._climb(now)

    def _climb(self, now: float) -> None:
        """A quarter more rate and one level less (under the lock)."""
        assert self.rate is not None
        self._clean = 0
        self._changed = now
        self.rate *= 1.25
        self.level = max(self.level - 1, 0)
        if self.rate > self.peak * 1.25 or self.level == 0:
            self.rate, self._limiter, self.level, self.reason = None, None, 0, ""
        else:
            self._limiter = RateLimiter(self.rate)

    def allowed(self) -> int:
        """Connections that may send now: half as many per throttle not yet climbed back."""
        with self._lock:
            if self.rate is not None:
                now = self._clock()
                quiet = now - max(self._changed, self._replied)
                if quiet >= self.RELAX_AFTER:
                    self._climb(now)
            return max(1, self.connections >> self.level)

    def pace(self) -> float:
        """How long to wait before the next message, under the lowered rate (0: no wait)."""
        limiter = self._limiter
        return float(limiter.reserve()) if limiter is not None else 0.0

    def describe(self) -> str:
        with self._lock:
            if self.rate is None:
                return ""
            return f"throttled: {self.rate:.3g}/s, {max(1, self.connections >> self.level)} conn"

    def current_rate(self) -> float:
        """Messages the relay took in the last second (this process)."""
        with self._lock:
            return self._recent_rate(self._clock())
