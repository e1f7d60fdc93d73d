"""A Hugo page's URL: `url` front matter, `[permalinks]` patterns, or its path under content/.

sources.hugo asks here for each page's link; the rules are Hugo 0.111's (helpers/path.go,
resources/page/permalinks.go, page_paths.go).
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import quote, unquote_plus

_TOKEN = re.compile(r":([a-z]+)(?:\[(.+?)\])?")
_ALLOWED_MARKS = frozenset("./\\_#+~-")


@dataclass(frozen=True)
class UrlParts:
    """What a page's URL can be made of."""

    section: str
    sections: tuple[str, ...]
    directory: str
    filename: str
    slug: str
    title: str
    date: datetime | None
    url: str


def unicode_sanitize(text: str, *, remove_accents: bool = False) -> str:
    """Hugo 0.111's UnicodeSanitize: keep letters, digits, marks and ./\\_#+~-; a run of
    spaces and dropped characters between kept ones becomes one '-' (none after a '-')."""
    if remove_accents:
        text = "".join(
            c for c in unicodedata.normalize("NFD", text) if unicodedata.category(c) != "Mn"
        )
        text = unicodedata.normalize("NFC", text)
    target: list[str] = []
    prepend_hyphen = False
    was_hyphen = False
    for i, char in enumerate(text):
        category = unicodedata.category(char)
        allowed = char in _ALLOWED_MARKS or category[0] in "LM" or category == "Nd"
        if char == "%" and re.fullmatch(r"[0-9A-Fa-f]{2}", text[i + 1 : i + 3]):
            allowed = True
        if allowed:
            was_hyphen = char == "-"
            if prepend_hyphen and not was_hyphen:
                target.append("-")
            prepend_hyphen = False
            target.append(char)
        elif target and not was_hyphen and char.isspace():
            prepend_hyphen = True
    return "".join(target)


def make_path(text: str, *, to_lower: bool = True, remove_accents: bool = False) -> str:
    """Hugo's MakePathSanitized: sanitized and (unless disablePathToLower) lower-cased."""
    cleaned = unicode_sanitize(text, remove_accents=remove_accents)
    return cleaned.lower() if to_lower else cleaned


def urlize(text: str, *, to_lower: bool = True, remove_accents: bool = False) -> str:
    """Hugo's URLize: MakePathSanitized, then percent-encoded like Go's url.URL.String."""
    return url_escape(make_path(text, to_lower=to_lower, remove_accents=remove_accents))


def url_escape(path: str) -> str:
    return quote(path, safe="/-._~!$&'()*+,;=:@%#")


def expand_permalink(pattern: str, parts: UrlParts, *, to_lower: bool, accents: bool) -> str:
    """A `[permalinks]` pattern filled in for one page (Hugo 0.111 tokens)."""

    def slug_else(fallback: str) -> str:
        return (
            urlize(parts.slug, to_lower=to_lower, remove_accents=accents)
            if parts.slug
            else (fallback)
        )

    when = parts.date
    values = {
        "section": parts.section,
        "sections": "/".join(parts.sections),
        "title": urlize(parts.title, to_lower=to_lower, remove_accents=accents),
        "filename": urlize(parts.filename, to_lower=to_lower, remove_accents=accents),
    }
    values["slug"] = slug_else(values["title"])
    values["slugorfilename"] = slug_else(values["filename"])
    if when is not None:
        values |= {
            "year": str(when.year),  # Go's strconv.Itoa: no zero padding
            "month": f"{when.month:02d}",
            "monthname": when.strftime("%B"),
            "day": f"{when.day:02d}",
            "weekday": str(when.isoweekday() % 7),
            "weekdayname": when.strftime("%A"),
            "yearday": str(when.timetuple().tm_yday),
        }
    else:  # Hugo's zero time
        values |= {"year": "1", "month": "01", "monthname": "January", "day": "01"}
        values |= {"weekday": "1", "weekdayname": "Monday", "yearday": "1"}

    def replace(match: re.Match[str]) -> str:
        if match.group(2) is not None and match.group(1) == "sections":
            return "/".join(_cut(list(parts.sections), match.group(2)))
        return values.get(match.group(1), match.group(0))

    # Hugo query-unescapes the expanded pattern ('+' becomes a space) and sanitizes it again.
    expanded = unquote_plus(_TOKEN.sub(replace, pattern))
    return make_path(expanded, to_lower=False, remove_accents=False)


def _cut(items: list[str], cut: str) -> list[str]:
    """Hugo's `:sections[...]` slice: `[1:]`, `[:2]`, `[last]`, `[0]`."""
    cut = cut.strip().lower()

    def index(text: str, low: bool) -> int:
        text = text.strip()
        if not text:
            return 0 if low else len(items)
        if text == "last":
            return len(items) - 1
        number = max(int(text), 0) if text.lstrip("-").isdigit() else 0
        if number >= len(items):
            return -1 if low else len(items)
        return number

    if ":" not in cut:
        at = index(cut, False)
        return items[at : at + 1] if 0 <= at < len(items) else []
    low_text, high_text = cut.split(":", 1)
    low, high = index(low_text, True), index(high_text, False)
    if low < 0 or high < low:
        return []
    return items[low:high]


def page_link(
    parts: UrlParts,
    *,
    permalink: str | None,
    ugly: bool,
    prefix: str,
    to_lower: bool,
    accents: bool,
) -> str:
    """The page's RelPermalink path (without the base URL's own path)."""
    if parts.url:
        link = parts.url if parts.url.startswith("/") else "/" + parts.url
        if not link.endswith("/") and "." not in link.rsplit("/", 1)[-1]:
            link += "/"
        return url_escape(prefix + link if not parts.url.startswith("/") else link)
    if permalink:
        path = expand_permalink(permalink, parts, to_lower=to_lower, accents=accents)
    else:
        base = parts.slug or parts.filename
        joined = "/".join(p for p in (parts.directory, base) if p)
        path = make_path(joined, to_lower=to_lower, remove_accents=accents)
    path = "/" + path.strip("/")
    link = path + ".html" if ugly else path + "/"
    link = re.sub(r"/{2,}", "/", prefix + link)
    return url_escape(link)


def permalinks(base_url: str, link: str) -> tuple[str, str]:
    """(RelPermalink, Permalink): the base URL's own path comes first in both."""
    match = re.match(r"^([a-z][a-z0-9+.-]*://[^/]+)(/.*)?$", base_url.strip(), re.IGNORECASE)
    origin, base_path = (match.group(1), match.group(2) or "") if match else ("", base_url)
    relative = base_path.rstrip("/") + link
    return relative, origin + relative
