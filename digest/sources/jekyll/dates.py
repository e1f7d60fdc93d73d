"""A post's date by Jekyll's rules: front matter or file name, read in the right time zone.

posts ─► post_dates: the date decides the URL's :year/:month/:day, so it follows Jekyll exactly.
"""

from __future__ import annotations

import functools
import re
from datetime import MAXYEAR, MINYEAR, UTC, date, datetime, timedelta, timezone, tzinfo

from digest.errors import BadDateError, PostError

# Ruby's Date._parse (which Time.parse, hence Jekyll, uses), the parts a post date meets: weekday
# names are ignored; the time (am/pm, and a zone right after it) is found anywhere and taken out;
# then the date: `23 Jan 2020`, `Jan 23, 2020`, `2020-01-23`, `2020/01/23`, `23.01.2020` (the
# middle number is the month; the year is the number with more than two digits).
_WEEKDAY = re.compile(r"\b(?:sun|mon|tue|wed|thu|fri|sat)[^-/\d\s]*", re.I)
_TIME = re.compile(
    r"(?:(?P<h>\d+)\s*:\s*(?P<mi>\d+)(?:\s*:\s*(?P<s>\d+)(?:[,.](?P<f>\d*))?)?"
    r"(?:\s*(?P<ap>[ap])(?:m\b|\.m\.))?|(?P<h2>\d+)\s*(?P<ap2>[ap])(?:m\b|\.m\.))"
    r"(?:\s*(?P<zone>(?:gmt|utc?)?[-+]\d+(?:[,.:]\d+(?::\d+)?)?|[^\W\d_]+(?:\sdst)?\b))?",
    re.I,
)
_MONTH_NAME = r"(?P<mn>jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec)[^-\d\s']*"
_RUBY_DATES = (
    re.compile(r"'?\b(?P<d>\d+)[^-\d\s]*\s*" + _MONTH_NAME + r"(?:\s*(?P<y>'?-?\d+))?", re.I),
    re.compile(r"\b" + _MONTH_NAME + r"\s*(?P<d>'?\d+)[^-\d\s']*(?:\s*,?\s*(?P<y>'?-?\d+))?", re.I),
    re.compile(r"(?P<a>'?[-+]?\d+)-(?P<b>\d+)-(?P<c>'?-?\d+)"),
    re.compile(r"(?P<a>'?-?\d+)/\s*(?P<b>'?\d+)\D\s*(?P<c>'?-?\d+)"),
    re.compile(r"(?P<a>'?-?\d+)\.\s*(?P<b>'?\d+)\.\s*(?P<c>'?-?\d+)"),
)
_MONTHS = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
# Ruby's Time::ZoneOffset: the zone names Time.parse knows (another name: the local zone's own).
_ZONE_HOURS = {
    "UTC": 0, "Z": 0, "UT": 0, "GMT": 0, "EST": -5, "EDT": -4, "CST": -6, "CDT": -5,
    "MST": -7, "MDT": -6, "PST": -8, "PDT": -7,
    **{letter: index + 1 for index, letter in enumerate("ABCDEFGHIKLM")},
    **{letter: -(index + 1) for index, letter in enumerate("NOPQRSTUVWXY")},
}  # fmt: skip
# `2025-11-27`, `2025-11-27 09:00:00 +0100`, `2025-11-27T09:00:00.5Z`: most posts' dates.
_ISO_DATE = re.compile(
    r"\s*(\d{4})-(\d{1,2})-(\d{1,2})(?:[ T](\d{1,2}):(\d{2})(?::(\d{2})(?:\.(\d+))?)?)?"
    r"(?:\s*(Z|UTC|[+-]\d\d:?\d\d))?\s*"
)
_NUMERIC_ZONE = re.compile(r"([+-])(\d\d)(:?)(\d\d)(?:\3(\d\d))?|([+-])(\d\d)")


def post_date(value: object, file_date: str | None, tz: tzinfo, where: str) -> datetime | None:
    """The post's date in the site zone `tz`; None when neither front matter nor name has one.

    The time-zone rule is Jekyll's (jekyll#9278), kept so a post's URL day is the one Jekyll
    publishes:

    - a date with an offset (``2025-11-25 08:00:00 +0100``, ``2025-11-27T22:18:56+01:00``,
      ``...Z``) is that instant;
    - an UNQUOTED YAML timestamp without an offset (``date: 2025-11-27T22:18:56``) is UTC,
      because YAML reads it so and Jekyll keeps it;
    - a QUOTED date-time without an offset (``date: "2025-11-27 22:18:56"``), a date alone
      (``date: 2025-11-27``) and the date in the file name are in ``site.timezone``
      (midnight for a date alone).

    Every date is then converted to ``site.timezone``; the URL's ``:year/:month/:day`` come
    from that.
    """
    if value is None or value == "":
        if file_date is None:
            return None
        parsed = filename_date(file_date, tz)
        if parsed is None:
            raise PostError(where, f"the file name has an invalid date {file_date!r}")
        return parsed
    if isinstance(value, datetime):  # before `date`: datetime is a subclass of date
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)  # unquoted YAML timestamp: UTC, like Jekyll
        return value.astimezone(tz)
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day, tzinfo=tz)
    if isinstance(value, str):
        parsed = parse_date_text(value, tz)
        if parsed is None:
            raise BadDateError(
                where,
                f"date {value!r} is not a date like 2025-11-27 or 2025-11-27 09:00:00 +0100",
            )
        return parsed
    raise BadDateError(where, f"date {value!r} is not a date like 2025-11-27 09:00:00 +0100")


def parse_date_text(text: str, tz: tzinfo) -> datetime | None:
    """A date as Jekyll (Ruby's Time.parse) reads it; no zone Ruby knows: the site zone; a
    text Ruby cannot read: None."""
    plain = _ISO_DATE.fullmatch(text)
    if plain is not None:  # the usual form, read the same way without the general search
        year, month, day, hour, minute, second, fraction, zone = plain.groups()
        return _ruby_time(
            (int(year), int(month), int(day)),
            int(hour) if hour else 0,
            int(minute) if minute else 0,
            int(second) if second else 0,
            int(fraction[:6].ljust(6, "0")) if fraction else 0,
            zone,
            tz,
        )
    rest = _WEEKDAY.sub(lambda m: " " * len(m.group(0)), text)
    hour = minute = second = micro = 0
    zone_text: str | None = None
    clock = _TIME.search(rest)
    if clock is not None:
        if clock.group("h") is not None:
            hour, minute = int(clock.group("h")), int(clock.group("mi"))
            second = int(clock.group("s") or 0)
            micro = int((clock.group("f") or "0")[:6].ljust(6, "0"))
            meridian = clock.group("ap")
        else:
            hour, meridian = int(clock.group("h2")), clock.group("ap2")
        if meridian:
            hour = hour % 12 + (12 if meridian.lower() == "p" else 0)
        zone_text = clock.group("zone")
        rest = rest[: clock.start()] + " " * (clock.end() - clock.start()) + rest[clock.end() :]
    return _ruby_time(_ruby_ymd(rest), hour, minute, second, micro, zone_text, tz)


def _ruby_time(
    ymd: tuple[int, int, int] | None,
    hour: int,
    minute: int,
    second: int,
    micro: int,
    zone_text: str | None,
    tz: tzinfo,
) -> datetime | None:
    """Ruby's Time from Date._parse's parts: checked, a day past the month's end rolled over,
    in the zone Ruby knows, else local (the site zone)."""
    if ymd is None or not (1 <= ymd[1] <= 12 and 1 <= ymd[2] <= 31):
        return None
    if hour > 23 or minute > 59 or second > 60:
        return None
    year, month, day = ymd
    if not MINYEAR <= year <= MAXYEAR:
        return None
    offset = _ruby_zone_offset(zone_text, year, tz) if zone_text else None
    # Made in its zone at once: a naive time's `replace(tzinfo=)` costs more than the rest.
    zone = tz if offset is None else _fixed_zone(offset)
    try:
        when = datetime(year, month, day, hour, minute, min(second, 59), micro, zone)
    except ValueError:
        # Ruby's Time rolls a day past the month's end over (February 30 is March 2).
        start = datetime(year, month, 1, tzinfo=zone)
        when = start + timedelta(days=day - 1, hours=hour, minutes=minute, seconds=second)
        when = when.replace(microsecond=micro)
    else:
        if second == 60:
            when += timedelta(seconds=1)
    return when.astimezone(tz)


@functools.lru_cache(maxsize=64)
def _fixed_zone(offset: int) -> tzinfo:
    return timezone(timedelta(seconds=offset)) if offset else UTC


def _ruby_ymd(text: str) -> tuple[int, int, int] | None:
    for index, form in enumerate(_RUBY_DATES):
        match = form.search(text)
        if match is None:
            continue
        parts = match.groupdict()
        if index < 2:  # a month name
            if parts["y"] is None:
                return None  # Ruby takes this year: not a post's date
            named = _MONTHS.index(parts["mn"][:3].lower()) + 1
            return _year(parts["y"]), named, int(parts["d"].lstrip("'"))
        first, middle, last = parts["a"], parts["b"], parts["c"]
        if last.startswith("'") or len(last.lstrip("-")) > 2:
            first, last = last, first  # the year is last: day-month-year
        return _year(first), int(middle.lstrip("'")), int(last.lstrip("'+-"))
    return None


def _year(text: str) -> int:
    digits = text.lstrip("'+")
    year = int(digits)
    if len(digits.lstrip("-")) <= 2 and not text.startswith(("+", "-")):
        year += 1900 if year >= 69 else 2000  # Date._parse's two-digit years
    return year


@functools.lru_cache(maxsize=256)
def _ruby_zone_offset(zone: str, year: int, tz: tzinfo) -> int | None:
    """Ruby's Time.zone_offset: seconds east of UTC, or None (then the time is local)."""
    name = zone.upper()
    match = _NUMERIC_ZONE.fullmatch(name)
    if match is not None:
        if match.group(6):
            sign, hours, minutes, seconds = match.group(6), match.group(7), "0", "0"
        else:
            sign, hours, minutes = match.group(1), match.group(2), match.group(4)
            seconds = match.group(5) or "0"
        total = (int(hours) * 60 + int(minutes)) * 60 + int(seconds)
        return -total if sign == "-" else total
    if name in _ZONE_HOURS:
        return _ZONE_HOURS[name] * 3600
    for month in (1, 7):  # the local zone's own names, winter and summer
        local = datetime(year, month, 1, tzinfo=tz)
        if (local.tzname() or "").upper() == name:
            offset = local.utcoffset()
            return int(offset.total_seconds()) if offset is not None else None
    return None


def filename_date(text: str, tz: tzinfo) -> datetime | None:
    """The date part of a post file name (`2025-11-27`, or Jekyll's looser `25-1-5`)."""
    parts = text.split("-")
    if len(parts) != 3:
        return None
    year = int(parts[0])
    if len(parts[0]) == 2:
        year += 2000 if year < 69 else 1900  # Ruby's Date._parse for two-digit years
    try:
        return datetime(year, int(parts[1]), int(parts[2]), tzinfo=tz)
    except ValueError:
        return None
