"""Read a Jekyll site's posts into immutable `Post` values, by Jekyll's own rules.

config ─► posts ─► selection: dates, categories, excerpts and URLs as Jekyll publishes them.

Time zones (Jekyll's behaviour, jekyll#9278, kept so a post's URL day is the one Jekyll publishes):

- a date with an offset (``2025-11-25 08:00:00 +0100``, ``2025-11-27T22:18:56+01:00``, ``...Z``)
  is that instant;
- an UNQUOTED YAML timestamp without an offset (``date: 2025-11-27T22:18:56``) is UTC, because
  YAML reads it so and Jekyll keeps it;
- a QUOTED date-time without an offset (``date: "2025-11-27 22:18:56"``), a date alone
  (``date: 2025-11-27``) and the date in the file name are in ``site.timezone``
  (midnight for a date alone).

Every date is then converted to ``site.timezone``; the URL's ``:year/:month/:day`` come from that.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, timezone, tzinfo
from pathlib import Path
from typing import Any
from urllib.parse import quote

import frontmatter
import ftfy
import yaml
from frontmatter.default_handlers import YAMLHandler

from digest.config import SiteSettings
from digest.errors import ConfigError, PostError

log = logging.getLogger(__name__)

# Jekyll's Document::DATE_FILENAME_MATCHER (without the leading folders).
DATE_FILENAME = re.compile(r"^(\d{2,4}-\d{1,2}-\d{1,2})-([^/]*)(\.[^.]+)$")
# Jekyll's Document::DATELESS_FILENAME_MATCHER, used for _drafts.
DATELESS_FILENAME = re.compile(r"^([^/]+)(\.[^.]+)$")

PERMALINK_STYLES = {
    "date": "/:categories/:year/:month/:day/:title:output_ext",
    "pretty": "/:categories/:year/:month/:day/:title/",
    "ordinal": "/:categories/:year/:y_day/:title:output_ext",
    "weekdate": "/:categories/:year/W:week/:short_day/:title:output_ext",
    "none": "/:categories/:title:output_ext",
}
# Extensions Jekyll converts to .html (kramdown and plain HTML).
_HTML_EXTS = {".md", ".markdown", ".mkd", ".mkdn", ".mkdown", ".mdown", ".mdwn", ".html", ".htm"}
_PLACEHOLDER = re.compile(r":([a-z_]+)")
# fmt: off
_PLACEHOLDERS = frozenset((
    "year", "month", "i_month", "day", "i_day", "short_year", "hour", "minute", "second",
    "title", "slug", "categories", "y_day", "short_month", "long_month", "short_day", "long_day",
    "week", "w_year", "w_day", "output_ext",
))
# fmt: on
# Folders Jekyll never reads posts from (its EntryFilter and default `exclude`).
_SKIP_DIRS = {"node_modules", "vendor", "gemfiles"}
_DATE_TEXT = re.compile(
    r"^\s*(\d{4})[-/](\d{1,2})[-/](\d{1,2})"
    r"(?:(?:[Tt]|\s+)(\d{1,2}):(\d{2})(?::(\d{2})(?:[.,](\d+))?)?)?"
    r"\s*(Z|UTC|GMT|[+-]\d{1,2}(?::?\d{2})?)?\s*$",
    re.IGNORECASE,
)
_BOM = b"\xef\xbb\xbf"
_FIX = ftfy.TextFixerConfig(
    # Repair mojibake only: keep the author's quotes, ligatures, widths and HTML entities.
    unescape_html=False,
    uncurl_quotes=False,
    fix_latin_ligatures=False,
    fix_character_width=False,
    explain=False,
)


@dataclass(frozen=True)
class Post:
    """One published (or publishable) blog post, as Jekyll would build it."""

    id: str
    path: Path
    title: str
    date: datetime
    slug: str
    categories: tuple[str, ...]
    tags: tuple[str, ...]
    author: str | None
    excerpt: str
    content: str
    image: str | None
    url: str
    published: bool
    draft: bool

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready mapping (`path` is Jekyll's `page.path`: relative to the site root)."""
        return {
            "id": self.id,
            "title": self.title,
            "date": self.date.isoformat(),
            "categories": list(self.categories),
            "tags": list(self.tags),
            "url": self.url,
            "path": self.id,
            "file": str(self.path),
            "slug": self.slug,
            "author": self.author,
            "excerpt": self.excerpt,
            "image": self.image,
            "published": self.published,
            "draft": self.draft,
        }


@dataclass(frozen=True)
class PostsLoad:
    """The posts that could be read, newest first, and the files that could not."""

    posts: tuple[Post, ...]
    problems: tuple[PostError, ...]


def load_posts(site: SiteSettings, *, include_drafts: bool = False) -> PostsLoad:
    """Read every post of the site (and drafts if asked), newest first; bad files go to problems."""
    template = permalink_template(site.permalink)
    root = site.posts_dir.parent
    posts: list[Post] = []
    problems: list[PostError] = []
    for file, folder_categories, is_draft in _source_files(site, include_drafts):
        try:
            post = read_post(site, file, template, folder_categories, draft=is_draft)
        except PostError as exc:
            problems.append(exc)
            continue
        if post is not None:
            posts.append(post)
    posts.sort(key=lambda p: p.id)
    posts.sort(key=lambda p: p.date, reverse=True)
    problems.sort(key=lambda e: e.path)
    log.debug("read %d posts from %s (%d problems)", len(posts), root, len(problems))
    return PostsLoad(tuple(posts), tuple(problems))


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
    unknown = _unknown_placeholders(name)
    if unknown:
        raise ConfigError(f"site.permalink: unknown placeholder {unknown} in {permalink!r}")
    return name


def _unknown_placeholders(template: str) -> str | None:
    for match in _PLACEHOLDER.finditer(template):
        name = match.group(1)
        # Jekyll also accepts `:title_` meaning `:title` followed by `_`.
        if name not in _PLACEHOLDERS and name.rstrip("_") not in _PLACEHOLDERS:
            return f":{name}"
    return None


# ---------------------------------------------------------------------------------------------
# Finding the files


def _source_files(
    site: SiteSettings, include_drafts: bool
) -> Iterator[tuple[Path, tuple[str, ...], bool]]:
    """(file, categories from the folders above it, is_draft) for every candidate post file."""
    posts_dir = site.posts_dir
    root = posts_dir.parent
    try:
        if not posts_dir.is_dir():
            raise ConfigError(f"site.posts_dir: folder {posts_dir} does not exist")
        os.listdir(posts_dir)
    except OSError as exc:
        raise ConfigError(
            f"site.posts_dir: cannot read folder {posts_dir}: {exc.strerror or exc}"
        ) from exc

    folders: list[tuple[Path, bool]] = [(posts_dir, False)]
    if include_drafts:
        folders.append((root / "_drafts", True))
    # Only a real Jekyll layout (`_posts`) has per-category `_posts` folders elsewhere in the site.
    if posts_dir.name == "_posts":
        for special, is_draft in _special_folders(root):
            if special != posts_dir and (include_drafts or not is_draft):
                folders.append((special, is_draft))

    seen: set[Path] = set()
    for folder, is_draft in folders:
        if folder in seen or not folder.is_dir():
            continue
        seen.add(folder)
        categories = _folder_categories(root, folder)
        matcher = DATELESS_FILENAME if is_draft else DATE_FILENAME
        for file in _files_under(folder):
            if not matcher.match(file.name):
                log.debug("not a post (name does not match Jekyll's pattern): %s", file)
                continue
            yield file, categories, is_draft


def _special_folders(root: Path) -> Iterator[tuple[Path, bool]]:
    """Every `_posts` / `_drafts` folder under the site root Jekyll would read."""
    for current, dirnames, _files in os.walk(root):
        keep = []
        for name in sorted(dirnames):
            if name in ("_posts", "_drafts"):
                yield Path(current) / name, name == "_drafts"
            elif not name.startswith((".", "_", "#")) and name not in _SKIP_DIRS:
                keep.append(name)
        dirnames[:] = keep


def _files_under(folder: Path) -> Iterator[Path]:
    """Files in a `_posts` folder and its subfolders, minus Jekyll's special and backup files."""
    for current, dirnames, filenames in os.walk(folder):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith((".", "_", "#")))
        for name in sorted(filenames):
            if name.startswith((".", "_", "#")) or name.endswith("~"):
                continue
            yield Path(current) / name


def _folder_categories(root: Path, folder: Path) -> tuple[str, ...]:
    try:
        parts = folder.parent.relative_to(root).parts
    except ValueError:
        return ()
    return tuple(p for p in parts if p not in ("", ".", "_posts", "_drafts"))


# ---------------------------------------------------------------------------------------------
# Reading one post


def read_post(
    site: SiteSettings,
    file: Path,
    template: str,
    folder_categories: tuple[str, ...] = (),
    *,
    draft: bool = False,
) -> Post | None:
    """One post file as a Post; None if it is not a post; PostError if it is broken."""
    root = site.posts_dir.parent
    try:
        post_id = file.relative_to(root).as_posix()
    except ValueError:
        post_id = file.as_posix()
    where = str(file)
    tz = site.tz

    try:
        raw = file.read_bytes()
    except OSError as exc:
        raise PostError(where, f"cannot read file: {exc.strerror or exc}") from exc
    if file.suffix.lower() not in _HTML_EXTS and not raw.removeprefix(_BOM).startswith(
        (b"---", b"+++")
    ):
        log.debug("not a post (no front matter): %s", post_id)
        return None  # an image or other static file that happens to match the name pattern
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise PostError(
            where, f"not valid UTF-8 (byte 0x{raw[exc.start]:02x} at offset {exc.start})"
        ) from exc
    text = text.replace("\r\n", "\n").replace("\r", "\n")

    handler = frontmatter.detect_format(text, frontmatter.handlers)
    if handler is None:
        if file.suffix.lower() in _HTML_EXTS:
            raise PostError(
                where, "no front matter (--- ... ---); Jekyll does not treat it as a post"
            )
        log.debug("not a post (no front matter): %s", post_id)
        return None
    try:
        front, body = handler.split(text.strip())
    except ValueError:
        raise PostError(where, "front matter is not closed (no closing --- line)") from None
    try:
        data = handler.load(front)
    except yaml.YAMLError as exc:
        raise PostError(where, f"front matter is not valid YAML: {_yaml_problem(exc)}") from exc
    except ValueError as exc:  # JSON or TOML front matter
        raise PostError(where, f"front matter cannot be read: {exc}") from exc
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise PostError(where, "front matter must be keys and values (title: ..., date: ...)")
    meta: dict[str, Any] = {str(k): v for k, v in data.items()}
    raw_scalars = _RawScalars(front if isinstance(handler, YAMLHandler) else None)

    name = file.name
    match = DATE_FILENAME.match(name)
    if match:
        file_date: str | None = match.group(1)
        file_slug, ext = match.group(2), match.group(3)
    else:
        dateless = DATELESS_FILENAME.match(name)
        file_date = None
        file_slug, ext = (dateless.group(1), dateless.group(2)) if dateless else (name, "")
    file_slug = file_slug.rstrip(".")

    when = _post_date(meta.get("date"), file_date, tz, where)
    if when is None:
        if draft:
            when = datetime.fromtimestamp(file.stat().st_mtime, tz)
        else:  # pragma: no cover - the matcher guarantees a file date
            raise PostError(where, "no date in the file name or the front matter")

    title = _text(meta, "title", raw_scalars, where)
    title = " ".join(_fix(title).split()) if title else ""
    if not title:
        title = " ".join(w.capitalize() for w in file_slug.split("-"))
    slug = _text(meta, "slug", raw_scalars, where) or file_slug

    categories = _unique(
        [
            *folder_categories,
            *_names(meta.get("categories"), "categories", raw_scalars, where, split=True),
            *_names(meta.get("category"), "category", raw_scalars, where, split=False),
        ]
    )
    tags = _unique(
        [
            *_names(meta.get("tags"), "tags", raw_scalars, where, split=True),
            *_names(meta.get("tag"), "tag", raw_scalars, where, split=False),
        ]
    )

    # Jekyll keeps the body as written; only the blank lines around it go.
    content = _fix(body.strip("\n").rstrip())
    excerpt = _excerpt(meta, content, site.excerpt_separator, raw_scalars, where)

    permalink = meta.get("permalink")
    if permalink is not None and not isinstance(permalink, str):
        raise PostError(where, f"permalink must be text, not {permalink!r}")
    if permalink:
        unknown = _unknown_placeholders(permalink)
        if unknown:
            raise PostError(where, f"permalink: unknown placeholder {unknown} in {permalink!r}")
    url_path = build_url_path(
        permalink or template,
        when=when,
        slug=slug,
        categories=categories,
        output_ext=_output_ext(ext),
    )

    return Post(
        id=post_id,
        path=file,
        title=title,
        date=when,
        slug=slug,
        categories=categories,
        tags=tags,
        author=_author(meta.get("author"), raw_scalars, where),
        excerpt=excerpt,
        content=content,
        image=_image(meta.get("image"), site.root_url),
        url=site.root_url + url_path,
        published=meta.get("published") is not False,
        draft=draft or meta.get("draft") is True,
    )


def _yaml_problem(exc: yaml.YAMLError) -> str:
    mark = getattr(exc, "problem_mark", None)
    problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
    # The mark counts from the front matter's first line; the file has the opening --- above it.
    return f"{problem} (front matter line {mark.line + 1})" if mark else str(problem)


def _fix(value: str) -> str:
    return str(ftfy.fix_text(value, config=_FIX)) if value else value


class _RawScalars:
    """The source text of YAML scalars, for values YAML turned into bool/int (`title: yes`)."""

    def __init__(self, front: str | None) -> None:
        self._front = front
        self._nodes: dict[str, yaml.Node] | None = None

    def _load(self) -> dict[str, yaml.Node]:
        if self._nodes is None:
            self._nodes = {}
            node = yaml.compose(self._front, Loader=yaml.SafeLoader) if self._front else None
            if isinstance(node, yaml.MappingNode):
                for key, value in node.value:
                    if isinstance(key, yaml.ScalarNode):
                        self._nodes[str(key.value)] = value
        return self._nodes

    def get(self, key: str, index: int | None = None) -> str | None:
        node = self._load().get(key)
        if index is not None and isinstance(node, yaml.SequenceNode):
            node = node.value[index] if index < len(node.value) else None
        if isinstance(node, yaml.ScalarNode):
            return str(node.value)
        return None


def _scalar_text(value: object, raw: str | None) -> str | None:
    """A scalar as the author wrote it; None for lists and mappings."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool | int | float | date):
        return raw if raw is not None else str(value)
    return None


def _text(meta: Mapping[str, Any], key: str, raw: _RawScalars, where: str) -> str:
    value = meta.get(key)
    if value is None:
        return ""
    text = _scalar_text(value, raw.get(key))
    if text is None:
        raise PostError(where, f"{key} must be text, not {type(value).__name__} {value!r}")
    return text.strip()


def _names(value: object, key: str, raw: _RawScalars, where: str, *, split: bool) -> list[str]:
    """Category or tag names: a YAML list, or a string split on whitespace (plural keys only)."""
    if value is None:
        return []
    if isinstance(value, list):
        names = []
        for i, item in enumerate(value):
            if item is None:
                continue
            text = _scalar_text(item, raw.get(key, i))
            if text is None:
                raise PostError(where, f"{key} must be a list of names, not {item!r}")
            names.append(text.strip())
        return [n for n in names if n]
    text = _scalar_text(value, raw.get(key))
    if text is None:
        raise PostError(where, f"{key} must be a name or a list of names, not {value!r}")
    if split:
        return text.split()
    return [text.strip()] if text.strip() else []


def _unique(names: list[str]) -> tuple[str, ...]:
    # Jekyll's `uniq`: exact duplicates go, names keep their case.
    return tuple(dict.fromkeys(names))


def _author(value: object, raw: _RawScalars, where: str) -> str | None:
    if value is None:
        return None
    if isinstance(value, dict):
        value = value.get("name")
        if value is None:
            return None
    if isinstance(value, list):
        parts = [_scalar_text(v, raw.get("author", i)) for i, v in enumerate(value)]
        text = ", ".join(p.strip() for p in parts if p and p.strip())
    else:
        scalar = _scalar_text(value, raw.get("author"))
        if scalar is None:
            raise PostError(where, f"author must be text, not {value!r}")
        text = scalar
    text = " ".join(_fix(text).split())
    return text or None


def _excerpt(
    meta: Mapping[str, Any], content: str, site_separator: str, raw: _RawScalars, where: str
) -> str:
    if meta.get("excerpt") is not None:
        return _fix(_text(meta, "excerpt", raw, where))
    separator = meta.get("excerpt_separator", site_separator)
    if separator is None:
        separator = site_separator
    if not isinstance(separator, str):
        raise PostError(where, f"excerpt_separator must be text, not {separator!r}")
    separator = separator.replace("\r\n", "\n")
    if separator == "":
        return ""  # Jekyll: an empty separator turns excerpts off
    head, _sep, _tail = content.lstrip("\n").partition(separator)
    return head.strip()


def _image(value: object, root_url: str) -> str | None:
    if isinstance(value, dict):  # jekyll-seo-tag: image: {path: ..., height: ...}
        value = value.get("path") or value.get("url") or value.get("feature")
    if not isinstance(value, str) or not value.strip():
        return None
    image = value.strip()
    if re.match(r"^[A-Za-z][A-Za-z0-9+.-]*:", image):
        return image  # https:, http:, data: ... used as is
    if image.startswith("//"):
        return "https:" + image
    return root_url + "/" + quote(image.lstrip("/"), safe="/-._~!$&'()*+,;=:@%")


def _output_ext(ext: str) -> str:
    return ".html" if ext.lower() in _HTML_EXTS else ext


# ---------------------------------------------------------------------------------------------
# Dates


def _post_date(value: object, file_date: str | None, tz: tzinfo, where: str) -> datetime | None:
    """The post's date by Jekyll's rules (see the module docstring), in the site zone."""
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
        parsed = _parse_date_text(value, tz)
        if parsed is None:
            raise PostError(
                where,
                f"date {value!r} is not a date like 2025-11-27 or 2025-11-27 09:00:00 +0100",
            )
        return parsed
    raise PostError(where, f"date {value!r} is not a date like 2025-11-27 09:00:00 +0100")


def _parse_date_text(text: str, tz: tzinfo) -> datetime | None:
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


# ---------------------------------------------------------------------------------------------
# URLs


def build_url_path(
    template: str,
    *,
    when: datetime,
    slug: str,
    categories: tuple[str, ...],
    output_ext: str,
) -> str:
    """Fill a Jekyll permalink template (Jekyll 4 url.rb / url_drop.rb) into a URL path."""
    values = {
        "year": when.strftime("%Y"),
        "month": when.strftime("%m"),
        "i_month": str(when.month),
        "day": when.strftime("%d"),
        "i_day": str(when.day),
        "short_year": when.strftime("%y"),
        "hour": when.strftime("%H"),
        "minute": when.strftime("%M"),
        "second": when.strftime("%S"),
        "y_day": when.strftime("%j"),
        "short_month": _MONTHS[when.month - 1][:3],
        "long_month": _MONTHS[when.month - 1],
        "short_day": _DAYS[when.weekday()][:3],
        "long_day": _DAYS[when.weekday()],
        "week": f"{when.isocalendar().week:02d}",
        "w_year": str(when.isocalendar().year),
        "w_day": str(when.isoweekday()),
        "title": slugify(slug, pretty=True),
        "slug": slugify(slug, pretty=False),
        # Jekyll lower-cases category names for URLs (and drops duplicates that creates).
        "categories": "/".join(dict.fromkeys(c.lower() for c in categories)),
        "output_ext": output_ext,
    }

    def replace(match: re.Match[str]) -> str:
        name = match.group(1)
        if name in values:
            return _escape_path(values[name])
        stripped = name.rstrip("_")
        if stripped in values:
            return _escape_path(values[stripped]) + name[len(stripped) :]
        return match.group(0)

    path = _PLACEHOLDER.sub(replace, template)
    path = "/" + path
    path = path.replace("..", "/").replace("./", "")
    return re.sub(r"/{2,}", "/", path)


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


def slugify(text: str, *, pretty: bool) -> str:
    """Jekyll's Utils.slugify: `pretty` (cased) for :title, `default` (lower-cased) for :slug."""
    if pretty:
        slug = re.sub(r"[^\w.~!$&'()+,;=@]+", "-", text)
    else:
        slug = re.sub(r"[\W_]+", "-", text).lower()
    return slug.strip("-")


def _escape_path(value: str) -> str:
    """Jekyll's URL.escape_path: percent-encode all but RFC 3986 pchar and `/`."""
    if not value or re.fullmatch(r"[a-zA-Z0-9./-]+", value):
        return value
    return quote(value, safe="-._~!$&'()*+,;=:@/")
