"""Read a Jekyll site's posts folder into immutable `Post` values, by Jekyll's own rules.

config ─► posts ─► selection: which files are posts, and each one's date, categories, excerpt, URL.
"""

from __future__ import annotations

import codecs
import dataclasses
import logging
import os
import re
from dataclasses import dataclass
from datetime import datetime, tzinfo
from pathlib import Path
from typing import Any, cast
from urllib.parse import quote

from digest.errors import BadDateError, PostError
from digest.settings import SiteSettings
from digest.sources import Source
from digest.sources.front_matter import (
    FrontMatter,
    RawScalars,
    repair_text,
    split_jekyll_front_matter,
)
from digest.sources.guards import read_post_bytes
from digest.sources.jekyll.dates import post_date
from digest.sources.jekyll.excerpts import cut_excerpt
from digest.sources.jekyll.files import DATE_FILENAME, DATELESS_FILENAME, SourceFile, source_files
from digest.sources.jekyll.permalinks import (
    HTML_EXTENSIONS,
    build_url_path,
    output_extension,
    permalink_template,
    unknown_placeholder,
)
from digest.sources.jekyll.site import JekyllSite, open_site
from digest.sources.jekyll.workers import Handback, process_count, read_all
from digest.sources.post import Post, PostsLoad

__all__ = ["DATELESS_FILENAME", "DATE_FILENAME", "JekyllSource", "load_posts", "read_post"]

log = logging.getLogger(__name__)

# Files in `_posts` Jekyll reads as data, never as posts (their content is nil).
_DATA_EXTENSIONS = frozenset({".yml", ".yaml"})
_URL_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*:")
# What `quote` leaves as it is in an image path (most paths: then it need not run).
_URL_SAFE_MARKS = "/-._~!$&'()*+,;=:@%"
_URL_SAFE = re.compile(r"[A-Za-z0-9/\-._~!$&'()*+,;=:@%]*")


class JekyllSource(Source):
    """A Jekyll site's posts folders (`site.posts_dir`), read by Jekyll's rules."""

    def __init__(self, site: SiteSettings) -> None:
        self.site = site

    def load(
        self, *, as_of: datetime, now: datetime | None = None, include_drafts: bool = False
    ) -> PostsLoad:
        # A Jekyll post says itself whether it is published; `as_of` is selection's to judge.
        return load_posts(self.site, include_drafts=include_drafts)

    def describe(self) -> str:
        return f"site.posts_dir ({self.site.posts_dir})"


def load_posts(
    site: SiteSettings, *, include_drafts: bool = False, processes: int | None = None
) -> PostsLoad:
    """Read every post of the site (and drafts if asked), newest first; bad files go to problems.

    `processes`: how many processes read the files; None lets the site's size and the CPUs
    decide (post_workers). The result is the same however many there are.
    """
    template = permalink_template(site.permalink)
    jekyll = open_site(site)
    sources = list(source_files(site.posts_dir, jekyll, include_drafts))
    if processes is None:
        processes = process_count(len(sources))

    def read(source: SourceFile) -> Post | None:
        return read_source(site, source, template, jekyll)

    posts: list[Post] = []
    problems: list[PostError] = []
    for outcome in read_all(read, sources, processes, _HANDBACK):
        if isinstance(outcome, PostError):
            problems.append(outcome)
        elif outcome is not None:
            posts.append(outcome)
    posts = _render_liquid(site, jekyll, posts)
    posts.sort(key=lambda p: p.id)
    posts.sort(key=lambda p: p.date, reverse=True)
    problems.sort(key=lambda e: e.path)
    log.debug("read %d posts from %s (%d problems)", len(posts), jekyll.root, len(problems))
    return PostsLoad(tuple(posts), tuple(problems))


# What a reader process hands back: a post's values but its path, which this process has
# (SourceFile.file); a Path costs more to unpickle than the rest of the post.
_POST_FIELDS = tuple(field.name for field in dataclasses.fields(Post))


def _pack(post: Post | None) -> tuple[Any, ...] | None:
    if post is None:
        return None
    values = vars(post)
    return tuple([None if name == "path" else values[name] for name in _POST_FIELDS])


def _unpack(values: object, source: SourceFile) -> Post | None:
    if values is None:
        return None
    post: Post = object.__new__(Post)  # as pickle makes it: cleaned in the reader already
    state = vars(post)
    state.update(zip(_POST_FIELDS, cast(tuple[Any, ...], values), strict=True))
    state["path"] = source.file if source.file is not None else Path(source.path)
    return post


_HANDBACK: Handback[SourceFile, Post | None] = Handback(_pack, _unpack)


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
    jekyll: JekyllSite | None = None,
) -> Post | None:
    """One post file as a Post; None if it is not a post; PostError if it is broken."""
    jekyll = jekyll or open_site(site)
    source = SourceFile(str(file), _post_id(jekyll.root, file), file.name, folder_categories, draft)
    return read_source(site, source, template, jekyll)


def read_source(
    site: SiteSettings, source: SourceFile, template: str, jekyll: JekyllSite
) -> Post | None:
    """One candidate file found by `source_files` as a Post (see `read_post`)."""
    where = source.path
    name = parse_file_name(source.name)
    raw = _read_text(where, name.extension, source.relative, site.max_post_bytes)
    if raw is None:
        return None
    text = _unix_lines(raw)
    front = _read_front_matter(text, where, source.relative)
    meta = jekyll.with_defaults(source.relative, front.meta, "posts")
    if meta is not front.meta:
        front = FrontMatter(meta, front.body, front.raw, front.where)
    # Each step may raise; their order decides which problem a broken file reports.
    title = _title(front, name.slug)
    try:
        when = _resolve_date(front, name, where, site.tz, draft=source.draft)
    except BadDateError as exc:  # listed as bad-date, with what is known of the post
        raise BadDateError(exc.path, exc.reason, title=title) from None
    slug = front.text("slug") or name.slug
    categories = _categories(front, source.categories)
    tags = _tags(front)
    # Jekyll keeps the body as written; only the blank lines around it go.
    content = repair_text(front.body.strip("\n").rstrip())
    # The separator is looked for in the text as written: in a CRLF file "\n\n" is not there.
    written = _as_written(raw, front.body) if raw is not text else None
    excerpt = _excerpt(front, content, site.excerpt_separator, written)
    url_path = build_url_path(
        _front_permalink(front) or template,
        when=when,
        slug=slug,
        categories=categories,
        output_ext=output_extension(name.extension),
    )
    return Post(
        id=source.relative,
        path=source.file if source.file is not None else Path(where),
        title=title,
        date=when,
        slug=slug,
        categories=categories,
        tags=tags,
        author=front.author(),
        excerpt=excerpt,
        content=content,
        image=_image(front.meta.get("image"), site.root_url),
        url=site.root_url + _escaped(url_path),
        published=front.meta.get("published") is not False,
        draft=source.draft or front.meta.get("draft") is True,
        front_matter=front.meta,
    )


def _post_id(root: Path, file: Path) -> str:
    """The post's path relative to the site root (Jekyll's `page.path`)."""
    base, text = str(root.absolute()) + os.sep, str(file.absolute())
    relative = text[len(base) :] if text.startswith(base) else str(file)
    return relative.replace(os.sep, "/")


def _read_text(where: str, extension: str, post_id: str, max_bytes: int) -> str | None:
    """The file's text as written; None for a file Jekyll does not make a post."""
    if extension.lower() in _DATA_EXTENSIONS:
        log.debug("not a post (a data file): %s", post_id)
        return None
    raw = read_post_bytes(where, max_bytes)
    try:
        # The utf-8-sig codec is Python code; without a BOM it is plain UTF-8 (same errors).
        text = raw.decode("utf-8-sig" if raw.startswith(codecs.BOM_UTF8) else "utf-8")
    except UnicodeDecodeError as exc:
        if extension.lower() not in HTML_EXTENSIONS:
            log.debug("not a post (not text): %s", post_id)
            return None  # an image or other static file that happens to match the name pattern
        raise PostError(
            where, f"not valid UTF-8 (byte 0x{raw[exc.start]:02x} at offset {exc.start})"
        ) from exc
    return text


def _unix_lines(text: str) -> str:
    """`text` with Unix line ends (the same object when it has them already)."""
    if "\r" in text:
        return text.replace("\r\n", "\n").replace("\r", "\n")
    return text


def _as_written(raw: str, body: str) -> str | None:
    """The body as the file writes it (CRLF kept); None when that cannot be told apart."""
    if raw.count("\r") != raw.count("\r\n"):
        return None  # lone CRs: Jekyll's view and ours differ anyway
    lines = raw.split("\n")
    tail = "\n".join(lines[len(lines) - body.count("\n") - 1 :])
    return tail if tail.replace("\r\n", "\n") == body else None


def _escaped(path: str) -> str:
    """A URL path percent-encoded as Jekyll's absolute_url (Addressable's normalize) does."""
    if path.isascii() and _URL_SAFE.fullmatch(path):
        return path
    return quote(path, safe=_URL_SAFE_MARKS)


def _read_front_matter(text: str, where: str, post_id: str) -> FrontMatter:
    """The post's front matter; a post without one is still a post to Jekyll (empty matter)."""
    front = split_jekyll_front_matter(text, where)
    if front is not None:
        return front
    if text.startswith("---"):
        log.warning("%s: front matter is not closed (no closing --- line); read as text", where)
    else:
        log.debug("post without front matter: %s", post_id)
    return FrontMatter(meta={}, body=text, raw=RawScalars(None), where=where)


def _resolve_date(
    front: FrontMatter, name: PostFileName, where: str, tz: tzinfo, *, draft: bool
) -> datetime:
    """The front matter's date, else the file name's; a draft without either: its mtime."""
    # A date Ruby cannot read stops Jekyll's build; here the post is listed as bad-date.
    when = post_date(front.meta.get("date"), name.date, tz, front.where)
    if when is not None:
        return when
    if not draft:  # pragma: no cover - the matcher guarantees a file date
        raise PostError(front.where, "no date in the file name or the front matter")
    return datetime.fromtimestamp(os.stat(where).st_mtime, tz)


def _title(front: FrontMatter, file_slug: str) -> str:
    """The front matter's title as Jekyll keeps it, else the file name's words capitalised."""
    value = front.meta.get("title")
    title = value if isinstance(value, str) else front.text("title")
    # As written, spaces included; a YAML block's final line break is not part of a title.
    title = repair_text(title).strip("\r\n") if title.strip() else ""
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


def _excerpt(
    front: FrontMatter, content: str, site_separator: str, written: str | None = None
) -> str:
    """The front matter's `excerpt`, else the content up to the excerpt separator (looked for
    in the text as written, when it has CRLF line ends)."""
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
    if written is not None and "\n" in separator:
        head = cut_excerpt(written.strip("\r\n").rstrip(), separator)
        return repair_text(_unix_lines(head)).strip()
    return cut_excerpt(content.lstrip("\n"), separator).strip()


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
    if _URL_SCHEME.match(image):
        return image  # https:, http:, data: ... used as is
    if image.startswith("//"):
        return "https:" + image
    path = image.lstrip("/")
    if not _URL_SAFE.fullmatch(path):
        path = quote(path, safe=_URL_SAFE_MARKS)
    return root_url + "/" + path


def _render_liquid(site: SiteSettings, jekyll: JekyllSite, posts: list[Post]) -> list[Post]:
    """Excerpts with their Liquid rendered as Jekyll does, once every post's URL is known."""
    if not any("{{" in p.excerpt or "{%" in p.excerpt for p in posts):
        return posts
    # Imported when some excerpt holds Liquid: python-liquid and markdown-it cost ~0.2 s.
    from digest.sources.jekyll.liquid import JekyllLiquid
    from digest.sources.markdown import markdown_to_html

    root_url = site.root_url
    liquid = JekyllLiquid(
        url=site.url,
        baseurl=site.baseurl,
        post_urls={p.id: p.url.removeprefix(root_url) for p in posts},
        markdown=markdown_to_html,
        site_root=jekyll.root,
        includes_dir=jekyll.includes_dir,
    )
    site_variables = jekyll.liquid_site(site)
    rendered = []
    for post in posts:
        # Jekyll renders the excerpt it cut from the content, not one written in front matter.
        cut = post.front_matter.get("excerpt") is None
        if cut and ("{{" in post.excerpt or "{%" in post.excerpt):
            page = {
                **post.front_matter,
                "title": post.title,
                "date": post.date,
                "url": post.url.removeprefix(root_url),
                "path": post.id,
                "slug": post.slug,
                "categories": list(post.categories),
                "tags": list(post.tags),
                "content": post.content,
            }
            excerpt = liquid.render_excerpt(
                post.excerpt, page=page, site=site_variables, where=str(post.path)
            )
            post = dataclasses.replace(post, excerpt=excerpt.strip())
        rendered.append(post)
    return rendered
