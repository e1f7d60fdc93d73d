"""A post's date by Jekyll's rules: front matter or file name, read in the right time zone.

posts ─► post_dates: the date decides the URL's :year/:month/:day, so it follows Jekyll exactly.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta, timezone, tzinfo

from digest.errors import PostError

_DATE_TEXT = re.compile(
    r"^\s*(\d{4})[-/](\d{1,2})[-/](\d{1,2})"
    r"(?:(?:[Tt]|\s+)(\d{1,2}):(\d{2})(?::(\d{2})(?:[.,](\d+))?)?)?"
    r"\s*(Z|UTC|GMT|[+-]\d{1,2}(?::?\d{2})?)?\s*$",
    re.IGNORECASE,
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
    """Jekyll's `YYYY-MM-DD[ HH:MM[:SS]][ +HHMM]`, ISO 8601 too; no offset: the site zone."""
    match = _DATE_TEXT.match(text)
    if match is None:
        try:
            parsed = datetime.fromisoformat(text.strip())
        except ValueError:
            return None
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=tz)
        return parsed.astimezone(tz)
    year_text, month, day, hour, minute, second, fraction, offset = match.groups()
    year = int(year_text)
    try:
        micro = int((fraction or "0")[:6].ljust(6, "0"))
        naive = datetime(
            year, int(month), int(day), int(hour or 0), int(minute or 0), int(second or 0), micro
        )
    except ValueError:
        return None
    zone = _offset_zone(offset)
    if zone is None:
        return naive.replace(tzinfo=tz).astimezone(tz)
    return naive.replace(tzinfo=zone).astimezone(tz)


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
