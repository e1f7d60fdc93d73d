"""Dates as Hugo 0.111 reads them: spf13/cast's layouts, parsed by Go's time.Parse rules.

sources.hugo.front ─► dates: a front matter value (text, number, YAML/TOML date) becomes the
instant Hugo publishes, or None when Hugo would leave the date zero (then the page is listed as
`bad-date`, never dropped silently).
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, time, timedelta, timezone, tzinfo

# spf13/cast 1.5's layouts in its order; True: a layout whose zone, if any, is only a name, so
# cast keeps the wall clock and puts it in the site's zone.
CAST_LAYOUTS: tuple[tuple[str, bool], ...] = (
    ("2006-01-02T15:04:05Z07:00", False),  # RFC 3339
    ("2006-01-02T15:04:05", True),
    ("Mon, 02 Jan 2006 15:04:05 -0700", False),  # RFC 1123Z
    ("Mon, 02 Jan 2006 15:04:05 MST", True),  # RFC 1123
    ("02 Jan 06 15:04 -0700", False),  # RFC 822Z
    ("02 Jan 06 15:04 MST", True),  # RFC 822
    ("Monday, 02-Jan-06 15:04:05 MST", True),  # RFC 850
    ("2006-01-02 15:04:05.999999999 -0700 MST", False),  # Go's Time.String()
    ("2006-01-02T15:04:05-0700", False),
    ("2006-01-02 15:04:05Z0700", False),
    ("2006-01-02 15:04:05", True),
    ("Mon Jan _2 15:04:05 2006", True),  # ANSIC
    ("Mon Jan _2 15:04:05 MST 2006", True),  # Unix date
    ("Mon Jan 02 15:04:05 -0700 2006", False),  # Ruby date
    ("2006-01-02 15:04:05Z07:00", False),
    ("2006-01-02", True),
    ("02 Jan 2006", True),
    ("2006-01-02 15:04:05 -07:00", False),
    ("2006-01-02 15:04:05 -0700", False),
    # Kitchen and the Stamp layouts have no year: Hugo's date would be year 0; not a date here.
)

_MONTHS = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
_LONG_DAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
# Go layout elements, longest first where one is a prefix of another.
_ELEMENT = re.compile(
    r"January|Jan|Monday|Mon|2006|06|01|_2|02|15|04|05|Z07:00|Z0700|-07:00|-0700|MST|\.999999999"
)


class _Fields:
    __slots__ = ("day", "hour", "micro", "minute", "month", "offset", "second", "year")

    def __init__(self) -> None:
        self.year = self.month = self.day = -1
        self.hour = self.minute = self.second = self.micro = 0
        self.offset: int | None = None


def _digits(value: str, at: int, low: int, high: int) -> tuple[int, int]:
    """`low` to `high` digits at `at`: (number, end); (-1, at) when there are too few."""
    end = at
    while end < len(value) and end - at < high and value[end].isdigit():
        end += 1
    if end - at < low:
        return -1, at
    return int(value[at:end]), end


def _fraction(value: str, at: int, fields: _Fields) -> int:
    """Go accepts a fractional second right after the seconds even where the layout has none."""
    if at + 1 < len(value) and value[at] in ".," and value[at + 1].isdigit():
        end = at + 1
        while end < len(value) and value[end].isdigit():
            end += 1
        fields.micro = int(value[at + 1 : end][:6].ljust(6, "0"))
        return end
    return at


def _zone_name(value: str, at: int) -> int:
    """Go's parseTimeZone: the end of a zone abbreviation (UTC, PST, CEST...), or -1."""
    rest = value[at:]
    if rest.startswith("UTC"):
        return at + 3
    if rest[:4] in ("ChST", "MeST"):
        return at + 4
    if rest.startswith("GMT"):
        end = at + 3
        match = re.match(r"[+-]\d{1,2}", value[end:])
        return end + (match.end() if match else 0)
    upper = 0
    while upper < 6 and at + upper < len(value) and "A" <= value[at + upper] <= "Z":
        upper += 1
    if upper == 3 or (upper == 4 and (rest[3] == "T" or rest[:4] == "WITA")):
        return at + upper
    if upper == 5 and rest[4] == "T":
        return at + 5
    return -1


def _numeric_zone(value: str, at: int, colon: bool, allow_z: bool) -> tuple[int | None, int]:
    """An offset `-0700` / `-07:00` (or `Z` where allowed): (seconds east, end); (None, -1)."""
    if allow_z and value[at : at + 1] == "Z":
        return 0, at + 1
    pattern = r"([+-])(\d\d):(\d\d)" if colon else r"([+-])(\d\d)(\d\d)"
    match = re.compile(pattern).match(value, at)
    if match is None:
        return None, -1
    hours, minutes = int(match.group(2)), int(match.group(3))
    if hours > 24 or minutes > 59:
        return None, -1
    seconds = (hours * 60 + minutes) * 60
    return (-seconds if match.group(1) == "-" else seconds), match.end()


def _element(element: str, value: str, at: int, fields: _Fields) -> int:
    """Read one layout element at `at`; the end, or -1 when the value does not fit."""
    number = -1
    lower = value[at:].lower()
    if element in ("Jan", "January"):
        for index, name in enumerate(_MONTHS):
            full = datetime(2000, index + 1, 1).strftime("%B").lower()
            candidate = name if element == "Jan" else full
            if lower.startswith(candidate):
                fields.month = index + 1
                return at + len(candidate)
        return -1
    if element in ("Mon", "Monday"):
        for name in _LONG_DAYS:
            candidate = name[:3] if element == "Mon" else name
            if lower.startswith(candidate):
                return at + len(candidate)
        return -1
    if element == "2006":
        number, end = _digits(value, at, 4, 4)
        fields.year = number
    elif element == "06":
        number, end = _digits(value, at, 2, 2)
        fields.year = number + (1900 if number >= 69 else 2000)
    elif element == "01":
        number, end = _digits(value, at, 2, 2)
        fields.month = number
    elif element in ("02", "_2"):
        if element == "_2" and value[at : at + 1] == " ":
            at += 1
        number, end = _digits(value, at, 2 if element == "02" else 1, 2)
        fields.day = number
    elif element == "15":
        number, end = _digits(value, at, 1, 2)
        fields.hour = number
        if number > 23:
            return -1
    elif element in ("04", "05"):
        number, end = _digits(value, at, 2, 2)
        if number > 59:
            return -1
        if element == "04":
            fields.minute = number
        else:
            fields.second = number
            return _fraction(value, end, fields) if number >= 0 else -1
    elif element == ".999999999":
        return _fraction(value, at, fields)
    elif element == "MST":
        return _zone_name(value, at)
    else:  # numeric zones
        offset, end = _numeric_zone(value, at, ":" in element, element.startswith("Z"))
        fields.offset = offset
        return end
    return end if number >= 0 else -1


def go_parse(layout: str, value: str) -> _Fields | None:
    """`value` read by Go's time.Parse with `layout`: its fields, or None (Go's error)."""
    fields = _Fields()
    position = 0
    at = 0
    for match in _ELEMENT.finditer(layout):
        at = _skip(value, at, layout[position : match.start()])
        if at >= 0:
            at = _element(match.group(0), value, at, fields)
        if at < 0:
            return None
        position = match.end()
    at = _skip(value, at, layout[position:])
    return fields if at == len(value) else None


def _skip(value: str, at: int, literal: str) -> int:
    """Go's skip: the literal text of the layout, a run of spaces matching any run; -1 if not."""
    index = 0
    while index < len(literal):
        if literal[index] == " ":
            if at < len(value) and value[at] != " ":
                return -1
            while index < len(literal) and literal[index] == " ":
                index += 1
            while at < len(value) and value[at] == " ":
                at += 1
            continue
        if at >= len(value) or value[at] != literal[index]:
            return -1
        index += 1
        at += 1
    return at


def _moment(fields: _Fields, zone: tzinfo, keep_wall_clock: bool) -> datetime | None:
    try:
        naive = datetime(
            fields.year,
            fields.month,
            fields.day,
            fields.hour,
            fields.minute,
            fields.second,
            fields.micro,
        )
    except ValueError:
        return None  # Go: "day out of range" and friends
    if keep_wall_clock or fields.offset is None:
        return naive.replace(tzinfo=zone)
    offset = timezone(timedelta(seconds=fields.offset)) if fields.offset else UTC
    return naive.replace(tzinfo=offset)


def parse_hugo_text(text: str, zone: tzinfo) -> datetime | None:
    """A date written as text, as Hugo 0.111 (cast.StringToDateInDefaultLocation) reads it."""
    for layout, keep_wall_clock in CAST_LAYOUTS:
        fields = go_parse(layout, text)
        if fields is not None:
            return _moment(fields, zone, keep_wall_clock)
    return None


def hugo_date(value: object, zone: tzinfo) -> datetime | None:
    """A front matter date as Hugo reads it; None when absent, zero or unreadable."""
    parsed: datetime | None
    if value is None or value == "" or isinstance(value, bool):
        return None
    if isinstance(value, datetime):
        parsed = value if value.tzinfo is not None else value.replace(tzinfo=zone)
    elif isinstance(value, date):
        parsed = datetime.combine(value, time(), tzinfo=zone)
    elif isinstance(value, int):
        try:
            parsed = datetime.fromtimestamp(value, UTC).astimezone(zone)  # cast: Unix seconds
        except (OverflowError, OSError, ValueError):
            return None
    elif isinstance(value, str):
        parsed = parse_hugo_text(value, zone)
    else:
        return None
    return None if parsed is None or parsed.year <= 1 else parsed
