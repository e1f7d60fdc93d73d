"""A post's date by Jekyll's rules: front matter or file name, read in the right time zone.

posts ─► post_dates: the date decides the URL's :year/:month/:day, so it follows Jekyll exactly.
"""

from __future__ import annotations

import functools
import re
from datetime import UTC, date, datetime, timedelta, timezone, tzinfo

from digest.errors import PostError

# The date forms Ruby's Time.parse (Jekyll's Utils.parse_date) reads, first match wins:
# 2025-11-27 / 2025/11/27, 27-11-2025 / 27.11.2025 (day first), 11/27/2025 (month first),
# 27 Nov 2025, Nov 27, 2025.
_MONTH = r"(jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec)[a-z]*\.?"
_DATE_FORMS = (
    (re.compile(r"^\s*(?P<y>\d{4})[-/](?P<m>\d{1,2})[-/](?P<d>\d{1,2})", re.I)),
    (re.compile(r"^\s*(?P<d>\d{1,2})([-.])(?P<m>\d{1,2})\2(?P<y>\d{4})", re.I)),
    (re.compile(r"^\s*(?P<m>\d{1,2})/(?P<d>\d{1,2})/(?P<y>\d{4})", re.I)),
    (re.compile(r"^\s*(?P<d>\d{1,2})\s+(?P<mn>" + _MONTH + r")\s+(?P<y>\d{4})", re.I)),
    (
        re.compile(
            r"^\s*(?P<mn>" + _MONTH + r")\s+(?P<d>\d{1,2})(?:st|nd|rd|th)?,?\s+(?P<y>\d{4})", re.I
        )
    ),
)
_MONTHS = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
# After the date: a time, an offset right after it; anything further is ignored, as Ruby does.
_TIME_TEXT = re.compile(
    r"^(?:(?:[Tt]|\s+)(\d{1,2}):(\d{2})(?::(\d{2})(?:[.,](\d+))?)?)?"
    r"\s*(Z|UTC|GMT|[+-]\d{1,2}(?::?\d{2})?)?(?:\s.*)?\s*$",
    re.I | re.S,
)


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
            raise PostError(
                where,
                f"date {value!r} is not a date like 2025-11-27 or 2025-11-27 09:00:00 +0100",
            )
        return parsed
    raise PostError(where, f"date {value!r} is not a date like 2025-11-27 09:00:00 +0100")


def parse_date_text(text: str, tz: tzinfo) -> datetime | None:
    """A date as Jekyll (Ruby's Time.parse) reads it; no offset: the site zone; else None."""
    for form in _DATE_FORMS:
        match = form.match(text)
        if match is not None:
            break
    else:
        try:
            parsed = datetime.fromisoformat(text.strip())
        except ValueError:
            return None
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=tz)
        return parsed.astimezone(tz)
    parts = match.groupdict()
    month = _MONTHS.index(parts["mn"][:3].lower()) + 1 if parts.get("mn") else int(parts["m"])
    rest = _TIME_TEXT.match(text[match.end() :])
    if rest is None:
        return None
    hour, minute, second, fraction, offset = rest.groups()
    try:
        micro = int((fraction or "0")[:6].ljust(6, "0"))
        naive = datetime(
            int(parts["y"]),
            month,
            int(parts["d"]),
            int(hour or 0),
            int(minute or 0),
            int(second or 0),
            micro,
        )
    except ValueError:
        return None
    zone = _offset_zone(offset)
    if zone is None:
        return naive.replace(tzinfo=tz).astimezone(tz)
    return naive.replace(tzinfo=zone).astimezone(tz)


@functools.lru_cache(maxsize=64)
def _offset_zone(offset: str | None) -> tzinfo | None:
    """The fixed zone of an offset written `Z`, `UTC`, `+01`, `+0100` or `+01:00`."""
    if not offset:
        return None
    if offset.upper() in ("Z", "UTC", "GMT"):
        return UTC
    sign = -1 if offset[0] == "-" else 1
    digits = offset[1:].replace(":", "")
    hours = int(digits[:-2] if len(digits) > 2 else digits)
    minutes = int(digits[-2:]) if len(digits) > 2 else 0
    return timezone(sign * timedelta(hours=hours, minutes=minutes))


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
