"""Jekyll permalinks: the named styles, checking a custom pattern, and filling one into a URL path.

config ─► posts ─► permalinks: a post's URL is the one Jekyll 4 publishes (url.rb / url_drop.rb).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from datetime import datetime
from urllib.parse import quote

from digest.errors import ConfigError

PERMALINK_STYLES = {
    "date": "/:categories/:year/:month/:day/:title:output_ext",
    "pretty": "/:categories/:year/:month/:day/:title/",
    "ordinal": "/:categories/:year/:y_day/:title:output_ext",
    "weekdate": "/:categories/:year/W:week/:short_day/:title:output_ext",
    "none": "/:categories/:title:output_ext",
}
# Extensions Jekyll converts to .html (kramdown and plain HTML).
HTML_EXTENSIONS = frozenset(
    {".md", ".markdown", ".mkd", ".mkdn", ".mkdown", ".mdown", ".mdwn", ".html", ".htm"}
)
_PLACEHOLDER = re.compile(r":([a-z_]+)")
_SLASHES = re.compile(r"/{2,}")
_PRETTY_UNSAFE = re.compile(r"[^\w.~!$&'()+,;=@]+")
_DEFAULT_UNSAFE = re.compile(r"[\W_]+")
_PATH_SAFE = re.compile(r"[a-zA-Z0-9./-]+")
# fmt: off
_PLACEHOLDERS = frozenset((
    "year", "month", "i_month", "day", "i_day", "short_year", "hour", "minute", "second",
    "title", "slug", "categories", "y_day", "short_month", "long_month", "short_day", "long_day",
    "week", "w_year", "w_day", "output_ext",
))
# fmt: on
_MONTHS = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
]
_DAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]


def permalink_template(permalink: str) -> str:
    """The URL template of a permalink style name or a custom pattern (checked)."""
    name = permalink.strip()
    template = PERMALINK_STYLES.get(name)
    if template is not None:
        return template
    if "/" not in name and ":" not in name:
        styles = ", ".join(PERMALINK_STYLES)
        raise ConfigError(
            f"site.permalink: {permalink!r} is neither a style ({styles}) nor a pattern "
            "like /:year/:month/:title/"
        )
    unknown = unknown_placeholder(name)
    if unknown:
        raise ConfigError(f"site.permalink: unknown placeholder {unknown} in {permalink!r}")
    return name


def unknown_placeholder(template: str) -> str | None:
    """The first `:name` in `template` that Jekyll does not know, or None."""
    for match in _PLACEHOLDER.finditer(template):
        name = match.group(1)
        # Jekyll also accepts `:title_` meaning `:title` followed by `_`.
        if name not in _PLACEHOLDERS and name.rstrip("_") not in _PLACEHOLDERS:
            return f":{name}"
    return None


def output_extension(source_extension: str) -> str:
    """The extension Jekyll publishes a source file under (`.md` -> `.html`, others kept)."""
    return ".html" if source_extension.lower() in HTML_EXTENSIONS else source_extension


def build_url_path(
    template: str,
    *,
    when: datetime,
    slug: str,
    categories: tuple[str, ...],
    output_ext: str,
) -> str:
    """Fill a Jekyll permalink template (Jekyll 4 url.rb / url_drop.rb) into a URL path."""
    pieces = []
    for text, name, rest in _compiled(template):
        pieces.append(text)
        if name is None:
            continue
        if name == "title":
            value = _escape_path(slugify(slug, pretty=True))
        elif name == "slug":
            value = _escape_path(slugify(slug, pretty=False))
        elif name == "categories":
            value = _categories_path(categories)
        elif name == "output_ext":
            value = _escape_path(output_ext)
        else:  # digits and English names: nothing to escape
            value = _PLACEHOLDER_VALUES[name](when)
        pieces.append(value + rest)
    path = "/" + "".join(pieces)
    path = path.replace("..", "/").replace("./", "")
    return _SLASHES.sub("/", path) if "//" in path else path


_PLACEHOLDER_VALUES: dict[str, Callable[[datetime], str]] = {
    "year": lambda when: f"{when.year:04d}",
    "month": lambda when: f"{when.month:02d}",
    "i_month": lambda when: str(when.month),
    "day": lambda when: f"{when.day:02d}",
    "i_day": lambda when: str(when.day),
    "short_year": lambda when: f"{when.year % 100:02d}",
    "hour": lambda when: f"{when.hour:02d}",
    "minute": lambda when: f"{when.minute:02d}",
    "second": lambda when: f"{when.second:02d}",
    "y_day": lambda when: when.strftime("%j"),
    "short_month": lambda when: _MONTHS[when.month - 1][:3],
    "long_month": lambda when: _MONTHS[when.month - 1],
    "short_day": lambda when: _DAYS[when.weekday()][:3],
    "long_day": lambda when: _DAYS[when.weekday()],
    "week": lambda when: f"{when.isocalendar().week:02d}",
    "w_year": lambda when: str(when.isocalendar().year),
    "w_day": lambda when: str(when.isoweekday()),
}
_FILLED = frozenset(_PLACEHOLDER_VALUES) | {"title", "slug", "categories", "output_ext"}


@functools.lru_cache(maxsize=1024)
def _categories_path(categories: tuple[str, ...]) -> str:
    """`:categories` escaped; a site has a few combinations, each filled in once."""
    # Jekyll lower-cases category names for URLs (and drops duplicates that creates).
    return _escape_path("/".join(dict.fromkeys(c.lower() for c in categories)))


@functools.lru_cache(maxsize=64)
def _compiled(template: str) -> tuple[tuple[str, str | None, str], ...]:
    """The template as (text, placeholder, text kept after it) pieces, parsed once.

    `:title_` is `:title` followed by `_`; an unknown `:name` stays as written.
    """
    pieces: list[tuple[str, str | None, str]] = []
    start = 0
    for match in _PLACEHOLDER.finditer(template):
        name = match.group(1)
        stripped = name.rstrip("_")
        if name in _FILLED:
            pieces.append((template[start : match.start()], name, ""))
        elif stripped in _FILLED:
            pieces.append((template[start : match.start()], stripped, name[len(stripped) :]))
        else:
            pieces.append((template[start : match.end()], None, ""))
        start = match.end()
    pieces.append((template[start:], None, ""))
    return tuple(pieces)


def slugify(text: str, *, pretty: bool) -> str:
    """Jekyll's Utils.slugify: `pretty` (cased) for :title, `default` (lower-cased) for :slug."""
    slug = _PRETTY_UNSAFE.sub("-", text) if pretty else _DEFAULT_UNSAFE.sub("-", text).lower()
    return slug.strip("-")


def _escape_path(value: str) -> str:
    """Jekyll's URL.escape_path: percent-encode all but RFC 3986 pchar and `/`."""
    if not value or _PATH_SAFE.fullmatch(value):
        return value
    return quote(value, safe="-._~!$&'()*+,;=:@/")
