"""Hugo front matter (YAML, TOML, JSON) and Hugo's reading of the dates in it.

sources.hugo splits each content file here (by sources.front_matter's python-frontmatter
handlers, through the bounded loaders); dates follow Hugo 0.111 (spf13/cast layouts,
no offset: the site's timeZone), so a page's URL day is the one Hugo publishes.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, timezone, tzinfo
from email.utils import parsedate_to_datetime
from typing import Any

from digest.sources.front_matter import split_hugo_front_matter
from digest.sources.hugo.config import lower_keys

SUMMARY_DIVIDER = "<!--more-->"
_BOM = "\ufeff"
# The string layouts spf13/cast (used by Hugo 0.111) accepts, as one pattern plus RFC 1123/822.
_ISO = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})"
    r"(?:[T ](\d{2}):(\d{2}):(\d{2})(?:\.(\d+))?)?"
    r"\s*(Z|[+-]\d{2}:?\d{2})?(?:\s+[A-Z]{3,5})?$"
)
_DAY_MONTH_YEAR = re.compile(r"^(\d{2}) ([A-Z][a-z]{2}) (\d{4})$")
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


@dataclass(frozen=True)
class ContentFile:
    """A content file split into its front matter (keys lower-cased) and its body."""

    front: dict[str, Any]
    body: str
    has_front_matter: bool


def split_content(text: str) -> ContentFile:
    """Front matter and body of a content file; FrontMatterError when it is malformed."""
    text = text.removeprefix(_BOM).replace("\r\n", "\n")
    split = split_hugo_front_matter(text.lstrip())
    if split is None:
        return ContentFile({}, text, has_front_matter=False)
    data, body = split
    return ContentFile(lower_keys(data), body, has_front_matter=True)


def hugo_date(value: object, zone: tzinfo) -> datetime | None:
    """A front matter date as Hugo reads it; None when absent, zero or unreadable."""
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        parsed = value if value.tzinfo is not None else value.replace(tzinfo=zone)
    elif isinstance(value, date):
        parsed = datetime.combine(value, time(), tzinfo=zone)
    elif isinstance(value, str):
        parsed_text = _parse_text(value.strip(), zone)
        if parsed_text is None:
            return None
        parsed = parsed_text
    else:
        return None
    return None if parsed.year <= 1 else parsed


def _parse_text(text: str, zone: tzinfo) -> datetime | None:
    match = _ISO.match(text)
    if match:
        year, month, day, hour, minute, second, fraction, offset = match.groups()
        try:
            naive = datetime(
                int(year),
                int(month),
                int(day),
                int(hour or 0),
                int(minute or 0),
                int(second or 0),
                int((fraction or "0")[:6].ljust(6, "0")),
            )
        except ValueError:
            return None
        return naive.replace(tzinfo=_offset(offset) or zone)
    match = _DAY_MONTH_YEAR.match(text)
    if match and match.group(2) in _MONTHS:
        month_number = _MONTHS.index(match.group(2)) + 1
        return datetime(int(match.group(3)), month_number, int(match.group(1)), tzinfo=zone)
    try:
        parsed = parsedate_to_datetime(text)  # RFC 1123 / RFC 822 forms
    except (TypeError, ValueError, IndexError):
        return None
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=zone)


def _offset(text: str | None) -> tzinfo | None:
    if not text:
        return None
    if text == "Z":
        return UTC
    digits = text[1:].replace(":", "")
    delta = timedelta(hours=int(digits[:2]), minutes=int(digits[2:]))
    return timezone(-delta if text[0] == "-" else delta)
