"""Read a Jekyll site's posts folder into immutable `Post` values, by Jekyll's own rules.

config ─► posts ─► selection: which files are posts, and each one's date, categories, excerpt, URL.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, tzinfo
from pathlib import Path
from typing import Any
from urllib.parse import quote

from digest.config import SiteSettings
from digest.errors import ConfigError, PostError
from digest.front_matter import FrontMatter, repair_text, split_front_matter
from digest.permalinks import (
    HTML_EXTENSIONS,
    build_url_path,
    output_extension,
    permalink_template,
    unknown_placeholder,
)
from digest.post_dates import post_date
from digest.post_files import read_post_bytes

log = logging.getLogger(__name__)

# Jekyll's Document::DATE_FILENAME_MATCHER (without the leading folders).
DATE_FILENAME = re.compile(r"^(\d{2,4}-\d{1,2}-\d{1,2})-([^/]*)(\.[^.]+)$")
# Jekyll's Document::DATELESS_FILENAME_MATCHER, used for _drafts.
DATELESS_FILENAME = re.compile(r"^([^/]+)(\.[^.]+)$")
# Folders Jekyll never reads posts from (its EntryFilter and default `exclude`).
_SKIP_DIRS = {"node_modules", "vendor", "gemfiles"}
_BOM = b"\xef\xbb\xbf"


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


@dataclass(frozen=True)
class PostFileName:
    """What a post's file name says: `2025-11-27-my-post.md` is a date, a slug, an extension."""

    date: str | None
    slug: str
    extension: str


def parse_file_name(name: str) -> PostFileName:
    """The date (None for a draft's dateless name), slug and extension of a post file name."""
    match = DATE_FILENAME.match(name)
    if match:
        return PostFileName(match.group(1), match.group(2).rstrip("."), match.group(3))
    dateless = DATELESS_FILENAME.match(name)
    slug, extension = (dateless.group(1), dateless.group(2)) if dateless else (name, "")
    return PostFileName(None, slug.rstrip("."), extension)


def read_post(
    site: SiteSettings,
    file: Path,
    template: str,
    folder_categories: tuple[str, ...] = (),
    *,
    draft: bool = False,
) -> Post | None:
    """One post file as a Post; None if it is not a post; PostError if it is broken."""
    post_id = _post_id(site.posts_dir.parent, file)
    text = _read_text(file, post_id, site.max_post_bytes)
    front = None if text is None else _read_front_matter(text, file, post_id)
    if front is None:
        return None
    name = parse_file_name(file.name)
    # Each step may raise; their order decides which problem a broken file reports.
    when = _resolve_date(front, name, file, site.tz, draft=draft)
    title = _title(front, name.slug)
    slug = front.text("slug") or name.slug
    categories = _categories(front, folder_categories)
    tags = _tags(front)
    # Jekyll keeps the body as written; only the blank lines around it go.
    content = repair_text(front.body.strip("\n").rstrip())
    excerpt = _excerpt(front, content, site.excerpt_separator)
    url_path = build_url_path(
        _front_permalink(front) or template,
        when=when,
        slug=slug,
        categories=categories,
        output_ext=output_extension(name.extension),
    )
    return Post(
        id=post_id,
        path=file,
        title=title,
        date=when,
        slug=slug,
        categories=categories,
        tags=tags,
        author=front.author(),
        excerpt=excerpt,
        content=content,
        image=_image(front.meta.get("image"), site.root_url),
        url=site.root_url + url_path,
        published=front.meta.get("published") is not False,
        draft=draft or front.meta.get("draft") is True,
    )


def _post_id(root: Path, file: Path) -> str:
    """The post's path relative to the site root (Jekyll's `page.path`)."""
    try:
        return file.relative_to(root).as_posix()
    except ValueError:
        return file.as_posix()


def _read_text(file: Path, post_id: str, max_bytes: int) -> str | None:
    """The file's text with Unix line ends; None for a file that cannot be a post."""
    where = str(file)
    raw = read_post_bytes(file, max_bytes)
    if file.suffix.lower() not in HTML_EXTENSIONS and not raw.removeprefix(_BOM).startswith(
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
    return text.replace("\r\n", "\n").replace("\r", "\n")


def _read_front_matter(text: str, file: Path, post_id: str) -> FrontMatter | None:
    """The post's front matter; None when it has none (an error for a Markdown/HTML file)."""
    front = split_front_matter(text, str(file))
    if front is None:
        if file.suffix.lower() in HTML_EXTENSIONS:
            raise PostError(
                str(file), "no front matter (--- ... ---); Jekyll does not treat it as a post"
            )
        log.debug("not a post (no front matter): %s", post_id)
    return front


def _resolve_date(
    front: FrontMatter, name: PostFileName, file: Path, tz: tzinfo, *, draft: bool
) -> datetime:
    """The front matter's date, else the file name's; a draft without either: its mtime."""
    when = post_date(front.meta.get("date"), name.date, tz, front.where)
    if when is not None:
        return when
    if not draft:  # pragma: no cover - the matcher guarantees a file date
        raise PostError(front.where, "no date in the file name or the front matter")
    return datetime.fromtimestamp(file.stat().st_mtime, tz)


def _title(front: FrontMatter, file_slug: str) -> str:
    """The front matter's title on one line, else the file name's words capitalised."""
    title = front.text("title")
    title = " ".join(repair_text(title).split()) if title else ""
    return title or " ".join(w.capitalize() for w in file_slug.split("-"))


def _categories(front: FrontMatter, folder_categories: tuple[str, ...]) -> tuple[str, ...]:
    """The folders' categories, then `categories` (a list or words), then `category`."""
    return _unique(
        [
            *folder_categories,
            *front.names("categories", split=True),
            *front.names("category", split=False),
        ]
    )


def _tags(front: FrontMatter) -> tuple[str, ...]:
    """`tags` (a list or words), then `tag`."""
    return _unique([*front.names("tags", split=True), *front.names("tag", split=False)])


def _unique(names: list[str]) -> tuple[str, ...]:
    # Jekyll's `uniq`: exact duplicates go, names keep their case.
    return tuple(dict.fromkeys(names))


def _excerpt(front: FrontMatter, content: str, site_separator: str) -> str:
    """The front matter's `excerpt`, else the content up to the excerpt separator."""
    if front.meta.get("excerpt") is not None:
        return repair_text(front.text("excerpt"))
    separator = front.meta.get("excerpt_separator", site_separator)
    if separator is None:
        separator = site_separator
    if not isinstance(separator, str):
        raise PostError(front.where, f"excerpt_separator must be text, not {separator!r}")
    separator = separator.replace("\r\n", "\n")
    if separator == "":
        return ""  # Jekyll: an empty separator turns excerpts off
    head, _sep, _tail = content.lstrip("\n").partition(separator)
    return head.strip()


def _front_permalink(front: FrontMatter) -> str | None:
    """The post's own `permalink` pattern (checked), or None to use the site's."""
    permalink = front.meta.get("permalink")
    if permalink is not None and not isinstance(permalink, str):
        raise PostError(front.where, f"permalink must be text, not {permalink!r}")
    if not permalink:
        return None
    unknown = unknown_placeholder(permalink)
    if unknown:
        raise PostError(front.where, f"permalink: unknown placeholder {unknown} in {permalink!r}")
    return permalink


def _image(value: object, root_url: str) -> str | None:
    """The post's image as an absolute URL (text, or jekyll-seo-tag's mapping)."""
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
