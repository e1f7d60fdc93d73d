"""Crontab expressions with standard (Vixie cron) meaning: parse, validate, walk the fire times.

config checks every schedule with it at load; scheduler wraps it in an APScheduler trigger. Pure.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, tzinfo
from typing import Protocol

_WEEKDAY_NAMES = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")  # standard cron: 0 = Sunday
_MONTH_NAMES = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
_ITEM = re.compile(r"^(?:(\*)|([a-z0-9]+)(?:-([a-z0-9]+))?)(?:/(\d+))?$", re.IGNORECASE)

# Vixie cron's nicknames (@reboot has no meaning for a digest).
CRON_ALIASES = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}

# Long enough for "29 feb" on a Monday (28 years), short enough to end a search quickly.
_SEARCH_DAYS = 366 * 30


@dataclass(frozen=True)
class _Field:
    label: str
    low: int
    high: int
    names: tuple[str, ...] = ()
    name_base: int = 0


_FIELDS = (
    _Field("minute", 0, 59),
    _Field("hour", 0, 23),
    _Field("day of month", 1, 31),
    _Field("month", 1, 12, _MONTH_NAMES, 1),
    # 7 is accepted as Sunday and folded onto 0 after parsing.
    _Field("day of week", 0, 7, _WEEKDAY_NAMES, 0),
)


@dataclass(frozen=True)
class Crontab:
    """A parsed 5-field crontab with standard meaning (weekday 0 and 7 = Sunday, 1 = Monday)."""

    expression: str
    minutes: frozenset[int]
    hours: frozenset[int]
    days: frozenset[int]
    months: frozenset[int]
    weekdays: frozenset[int]  # 0 = Sunday ... 6 = Saturday
    days_restricted: bool  # the day-of-month field does not start with "*"
    weekdays_restricted: bool  # the day-of-week field does not start with "*"


def _value(text: str, field: _Field) -> int:
    lowered = text.lower()
    if lowered in field.names:
        return field.names.index(lowered) + field.name_base
    if not text.isdigit():
        expected = (
            f"a number or a name ({field.names[0]}..{field.names[-1]})"
            if field.names
            else "a number"
        )
        raise ValueError(f"{field.label} {text!r} is not {expected}")
    number = int(text)
    if not field.low <= number <= field.high:
        raise ValueError(f"{field.label} {number} is out of range {field.low}-{field.high}")
    return number


def _parse_field(text: str, field: _Field) -> frozenset[int]:
    values: set[int] = set()
    for item in text.split(","):
        match = _ITEM.match(item)
        if not match:
            raise ValueError(f"{field.label} field {text!r}: cannot read {item!r}")
        star, first, last, step_text = match.groups()
        step = int(step_text) if step_text else 1
        if step < 1:
            raise ValueError(f"{field.label} field {text!r}: step must be at least 1")
        if star:
            low, high = field.low, field.high
        else:
            low = _value(first, field)
            # "5/15" means 5, 20, 35, ... to the end of the range, as in cronie.
            high = _value(last, field) if last else (field.high if step_text else low)
            if low > high:
                raise ValueError(f"{field.label} range {item!r} goes backwards")
        values.update(range(low, high + 1, step))
    return frozenset(values)


def parse_crontab(expression: str) -> Crontab:
    """Read a standard 5-field crontab (or @daily-style nickname); ValueError says what is wrong."""
    parts = CRON_ALIASES.get(expression.strip().lower(), expression).split()
    if len(parts) != 5:
        raise ValueError(
            f"{expression!r} has {len(parts)} fields; a crontab has 5 "
            "(minute hour day-of-month month day-of-week), like '0 9 * * mon'"
        )
    minutes, hours, days, months, weekdays = (
        _parse_field(text, field) for text, field in zip(parts, _FIELDS, strict=True)
    )
    return Crontab(
        expression=expression,
        minutes=minutes,
        hours=hours,
        days=days,
        months=months,
        weekdays=frozenset(d % 7 for d in weekdays),
        days_restricted=not parts[2].startswith("*"),
        weekdays_restricted=not parts[4].startswith("*"),
    )


def day_matches(tab: Crontab, day: date) -> bool:
    """Whether the crontab fires at some time on this calendar day."""
    cron_weekday = (day.weekday() + 1) % 7  # Python: Monday = 0; cron: Sunday = 0
    if day.month not in tab.months:
        return False
    if tab.days_restricted and tab.weekdays_restricted:
        # Standard (Vixie) cron: when both are restricted, a day matching EITHER one fires.
        return day.day in tab.days or cron_weekday in tab.weekdays
    return day.day in tab.days and cron_weekday in tab.weekdays


def next_fire_time(tab: Crontab, tz: tzinfo, threshold: datetime) -> datetime | None:
    """The first fire time at or after `threshold` (an aware datetime), in `tz`; None if none.

    Walks wall-clock dates: a wall-clock time skipped by a spring change fires at the same
    offset after the change (01:30 becomes 02:30 BST), as `--as-of 01:30` reads; a time that
    happens twice (autumn) fires once, the first time. Results are real, normalised instants.
    """
    hours = sorted(tab.hours)
    minutes = sorted(tab.minutes)
    # A day early: near a change the wall clock and the instant differ by the offset.
    day = threshold.astimezone(tz).date() - timedelta(days=1)
    for _ in range(_SEARCH_DAYS):
        if day_matches(tab, day):
            for hour in hours:
                for minute in minutes:
                    # fold=0: the first of a repeated time; a skipped time maps past the gap.
                    wall = datetime(day.year, day.month, day.day, hour, minute, tzinfo=tz)
                    real = wall.astimezone(UTC).astimezone(tz)
                    if real >= threshold:
                        return real
        day += timedelta(days=1)
    return None


def check_crontab(expression: str, tz: tzinfo = UTC) -> Crontab:
    """The parsed crontab; ValueError if a field is invalid or it never fires (e.g. 30 Feb)."""
    tab = parse_crontab(expression)
    if next_fire_time(tab, tz, datetime(2000, 1, 1, tzinfo=tz)) is None:
        raise ValueError(f"{expression!r} never fires (no such date)")
    return tab


class CrontabSchedule:
    """A crontab in a time zone, asked for fire times the way APScheduler asks a trigger.

    Walks wall-clock dates itself rather than using APScheduler 3's CronTrigger, whose
    increments shift by the DST offset (3.11.3: "0 0 1 * *" in Europe/London skips 1 April).
    Fire times are real, normalised, strictly increasing instants (see next_fire_time).
    """

    __slots__ = ("crontab", "timezone")

    def __init__(self, crontab: Crontab, tz: tzinfo) -> None:
        self.crontab = crontab
        self.timezone = tz

    def get_next_fire_time(
        self, previous_fire_time: datetime | None, now: datetime
    ) -> datetime | None:
        """The first fire after `previous_fire_time` if given, else the first at or after `now`."""
        threshold = (
            previous_fire_time + timedelta(microseconds=1)
            if previous_fire_time is not None
            else now
        )
        return next_fire_time(self.crontab, self.timezone, threshold)

    def __str__(self) -> str:
        return f"crontab[{self.crontab.expression}]"

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.crontab.expression!r} {self.timezone}>"


class FireTimes(Protocol):
    """A CrontabSchedule or any APScheduler trigger: the next fire time after the previous one."""

    def get_next_fire_time(
        self, previous_fire_time: datetime | None, now: datetime
    ) -> datetime | None: ...


def next_fire_after(trigger: FireTimes, after: datetime) -> datetime | None:
    """The first fire time strictly after `after`."""
    return trigger.get_next_fire_time(after, after)


def latest_fire(
    trigger: FireTimes, since: datetime, now: datetime, grace: timedelta
) -> datetime | None:
    """The latest fire time in [since, now] that is within `grace` of now (coalescing), or None."""
    start = since if since >= now - grace else trigger.get_next_fire_time(None, now - grace)
    if start is None or start > now:
        return None
    latest = start
    while (following := next_fire_after(trigger, latest)) is not None and following <= now:
        latest = following
    return latest
