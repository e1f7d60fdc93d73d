"""deliver: local_time: which edition each time zone is in, and when the next zone comes due.

Pure (crontab ─► local_time ─► delivery.editions, schedule.scheduler): an edition is one wall
time of the crontab (Monday 09:00); each zone reaches it at its own instant, DST included.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, tzinfo
from zoneinfo import ZoneInfo

from digest.crontab import Crontab, day_matches, next_fire_time

# How far back the latest fire of a zone is looked for (a yearly crontab fires within this).
_SEARCH_DAYS = 366 * 4 + 1


@dataclass(frozen=True)
class ZoneFire:
    """The latest edition a zone has reached: its wall time and the instant it came."""

    zone: str
    edition: str  # the wall time, "2026-03-09T09:00": the same edition in every zone
    at: datetime  # the real instant the zone's clock reached it (aware, UTC)


def edition_key(wall: datetime) -> str:
    """An edition's name: its wall time, minutes precision, no zone."""
    return wall.strftime("%Y-%m-%dT%H:%M")


def latest_zone_fire(tab: Crontab, zone: str, now: datetime) -> ZoneFire | None:
    """The latest wall time of the crontab that zone's clock has reached at `now`, or None.

    A wall time a spring change skips comes at the same offset after the change (as
    crontab.next_fire_time says); one that happens twice (autumn) comes the first time.
    """
    tz = ZoneInfo(zone)
    day = now.astimezone(tz).date() + timedelta(days=1)
    hours = sorted(tab.hours, reverse=True)
    minutes = sorted(tab.minutes, reverse=True)
    for _ in range(_SEARCH_DAYS):
        if day_matches(tab, day):
            for hour in hours:
                for minute in minutes:
                    wall = datetime(day.year, day.month, day.day, hour, minute, tzinfo=tz)
                    real = wall.astimezone(UTC)
                    if real <= now:
                        return ZoneFire(zone, edition_key(wall), real)
        day -= timedelta(days=1)
    return None


def due_fires(tab: Crontab, zones: Iterable[str], now: datetime) -> list[ZoneFire]:
    """Each zone's latest edition at `now`, oldest edition first (then by instant)."""
    fires = [f for z in sorted(set(zones)) if (f := latest_zone_fire(tab, z, now)) is not None]
    return sorted(fires, key=lambda f: (f.edition, f.at))


class LocalTimeTrigger:
    """The crontab's wall time in every zone that has subscribers: fires as each comes due.

    `zones` is asked at each computation, so a subscriber in a new zone is picked up at the
    next fire. Fire times are strictly increasing real instants, as APScheduler wants.
    """

    def __init__(self, crontab: Crontab, zones: Callable[[], Iterable[str]], tz: tzinfo) -> None:
        self.crontab = crontab
        self.zones = zones
        self.timezone = tz  # for APScheduler's display only

    def get_next_fire_time(
        self, previous_fire_time: datetime | None, now: datetime
    ) -> datetime | None:
        threshold = (
            previous_fire_time + timedelta(microseconds=1)
            if previous_fire_time is not None
            else now
        )
        times = [
            t
            for zone in set(self.zones())
            if (t := next_fire_time(self.crontab, ZoneInfo(zone), threshold)) is not None
        ]
        return min(times).astimezone(self.timezone) if times else None

    def __str__(self) -> str:
        return f"local-time[{self.crontab.expression}]"
