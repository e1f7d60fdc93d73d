"""Read a Hugo site's content into `Post` values, by Hugo 0.111's rules.

config ─► sources.hugo ─► selection: pages of the content sections (mainSections, else the
largest section, or `site.sections`) in one language, with Hugo's dates, URLs and summaries.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from functools import cached_property
from pathlib import Path
from typing import Any

from digest.errors import ConfigError, PostError
from digest.settings import SiteSettings
from digest.sources import Source
from digest.sources.front_matter import FrontMatterError
from digest.sources.guards import MAX_FILE_BYTES, read_post_bytes
from digest.sources.hugo.config import HugoConfig, load_hugo_config
from digest.sources.hugo.content import ContentSource, content_sources
from digest.sources.hugo.front import hugo_date, split_content
from digest.sources.hugo.summary import Summary, SummaryMaker
from digest.sources.hugo.urls import UrlParts, page_link, permalinks
from digest.sources.post import Post, PostsLoad

log = logging.getLogger(__name__)

_HTML_EXTS = frozenset((".html", ".htm"))


@dataclass(frozen=True)
class HugoPage:
    """A regular page as Hugo sees it: every fact that decides whether and where it is published."""

    relative_path: str
    file: Path
    lang: str
    section: str
    bundle_type: str
    title: str
    slug: str
    date: datetime | None
    publish_date: datetime | None
    expiry_date: datetime | None
    lastmod: datetime | None
    draft: bool
    categories: tuple[str, ...]
    tags: tuple[str, ...]
    url: str
    permalink: str
    content: str
    params: Mapping[str, Any]
    is_html: bool
    summaries: SummaryMaker = field(repr=False, compare=False)

    @cached_property
    def summary(self) -> Summary:
        """Made when asked for: rendering every page of a large site takes seconds."""
        return self.summaries.summary(
            self.content, self.params.get("summary"), is_html=self.is_html
        )

    def is_future(self, now: datetime) -> bool:
        return self.publish_date is not None and self.publish_date > now

    def is_expired(self, now: datetime) -> bool:
        return self.expiry_date is not None and self.expiry_date < now

    def published_at(self, now: datetime) -> bool:
        """What a plain `hugo` build at `now` publishes: no draft, not future, not expired."""
        return not self.draft and not self.is_future(now) and not self.is_expired(now)


@dataclass(frozen=True)
class HugoSite:
    """A site's pages in every language (and the pages that could not be read)."""

    config: HugoConfig
    pages: tuple[HugoPage, ...]
    problems: tuple[PostError, ...]

    def main_sections(self, lang: str) -> tuple[str, ...]:
        """mainSections from the config, else the section with the most pages."""
        if self.config.main_sections:
            return self.config.main_sections
        sizes = Counter(p.section for p in self.pages if p.lang == lang and p.section)
        if not sizes:
            return ()
        largest = max(sizes.values())
        return (min(s for s, n in sizes.items() if n == largest),)


def read_hugo_site(root: Path, *, max_bytes: int = MAX_FILE_BYTES) -> HugoSite:
    """Every regular page of the Hugo site at `root`, in every language (a content file over
    `max_bytes`, or not a regular file, is a problem: one warning)."""
    config = load_hugo_config(root)
    summaries = SummaryMaker(config.summary_length, unsafe_html=config.unsafe_html)
    pages: list[HugoPage] = []
    problems: list[PostError] = []
    for source in content_sources(config):
        try:
            page = read_page(config, source, summaries, max_bytes=max_bytes)
        except PostError as exc:
            problems.append(exc)
            continue
        if page is not None:
            pages.append(page)
    return HugoSite(config, tuple(pages), tuple(problems))


class HugoSource(Source):
    """A Hugo site (`site.root`): the pages of its content sections in one language."""

    def __init__(self, site: SiteSettings) -> None:
        self.site = site

    def load(
        self, *, as_of: datetime, now: datetime | None = None, include_drafts: bool = False
    ) -> PostsLoad:
        site = self.site
        return load_hugo_posts(
            site.root or site.posts_dir.parent,
            now=as_of,
            sections=site.sections,
            lang=site.lang,
            include_drafts=include_drafts,
            max_bytes=site.max_post_bytes,
        )

    def describe(self) -> str:
        return f"site.root (the Hugo site {self.site.root}) and site.sections"


def load_hugo_posts(
    root: Path,
    *,
    now: datetime,
    sections: Sequence[str] = (),
    lang: str | None = None,
    include_drafts: bool = False,
    max_bytes: int = MAX_FILE_BYTES,
) -> PostsLoad:
    """The posts of a Hugo site's content sections in one language, newest first."""
    site = read_hugo_site(root, max_bytes=max_bytes)
    language = site.config.language(lang or site.config.default_language)
    chosen = tuple(sections) or site.main_sections(language.code)
    if not chosen:
        raise ConfigError(f"site.sections: the Hugo site {root} has no content sections")
    wanted = {s.lower() for s in chosen}
    posts = [
        hugo_post(page, now)
        for page in site.pages
        if page.lang == language.code
        and page.section.lower() in wanted
        and page.date is not None
        and (include_drafts or not page.draft)
    ]
    posts.sort(key=lambda p: p.id)
    posts.sort(key=lambda p: p.date, reverse=True)
    log.debug("read %d Hugo posts (%s, %s) from %s", len(posts), language.code, chosen, root)
    return PostsLoad(tuple(posts), tuple(sorted(site.problems, key=lambda e: e.path)))


def hugo_post(page: HugoPage, now: datetime) -> Post:
    """The `Post` value of a dated page; a future or expired page is not published at `now`."""
    assert page.date is not None
    stem = page.file.parent.name if page.bundle_type else page.file.stem
    return Post(
        id=page.relative_path,
        path=page.file,
        title=page.title or stem.replace("-", " ").capitalize(),
        date=page.date,
        slug=page.slug or stem,
        categories=page.categories,
        tags=page.tags,
        author=_author(page.params),
        excerpt=page.summary.excerpt,
        content=page.content.strip(),
        image=_image(page.params),
        url=page.permalink,
        # A future date is "future" already; a later publishDate alone makes it unpublished.
        published=not (page.is_future(now) and page.date <= now) and not page.is_expired(now),
        draft=page.draft,
    )


# ---------------------------------------------------------------------------------------------
# Reading one page


def read_page(
    config: HugoConfig,
    source: ContentSource,
    summaries: SummaryMaker,
    *,
    max_bytes: int = MAX_FILE_BYTES,
) -> HugoPage | None:
    """One content file as a HugoPage; None if Hugo would not make it a regular page."""
    file = source.file
    where = str(file)
    try:
        text = read_post_bytes(file, max_bytes).decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise PostError(where, f"not valid UTF-8 (at offset {exc.start})") from exc
    try:
        content = split_content(text)
    except FrontMatterError as exc:
        raise PostError(where, str(exc)) from exc
    is_html = file.suffix.lower() in _HTML_EXTS
    if is_html and not content.has_front_matter:
        return None  # Hugo copies an .html file without front matter as it is
    front = content.front
    if source.bundle and front.get("headless") is True:
        return None
    if _never_listed(front):
        return None

    zone = config.time_zone
    dates = {name: _first_date(front, keys, zone) for name, keys in config.date_keys.items()}
    relative_dir = file.parent.relative_to(source.content_dir).as_posix()
    directory = "" if relative_dir == "." else relative_dir
    bundle_dir = ""
    if source.bundle:
        directory, _, bundle_dir = directory.rpartition("/")
    section = directory.split("/")[0]
    title = _text(front.get("title"))
    slug = _text(front.get("slug")).strip("-")
    parts = UrlParts(
        section=section,
        sections=tuple(p for p in directory.split("/") if p),
        directory=directory,
        filename=bundle_dir or _translation_base_name(file, config),
        slug=slug,
        title=title,
        date=dates["date"],
        url=_text(front.get("url")),
    )
    language = source.language
    link = page_link(
        parts,
        permalink=config.permalinks.get(section.lower()) if section else None,
        ugly=config.ugly_urls or section in config.ugly_sections,
        prefix=language.url_prefix,
        to_lower=not config.disable_path_to_lower,
        accents=config.remove_path_accents,
    )
    relative, absolute = permalinks(language.base_url, link)
    return HugoPage(
        relative_path=file.relative_to(config.root).as_posix(),
        file=file,
        lang=language.code,
        section=section,
        bundle_type=source.bundle,
        title=title,
        slug=slug,
        date=dates["date"],
        publish_date=dates["publishdate"],
        expiry_date=dates["expirydate"],
        lastmod=dates["lastmod"],
        draft=_draft(front),
        categories=_names(front.get("categories")),
        tags=_names(front.get("tags")),
        url=relative,
        permalink=absolute,
        content=content.body,
        params=front,
        is_html=is_html,
        summaries=summaries,
    )


def _translation_base_name(file: Path, config: HugoConfig) -> str:
    """The file name without its extension and its language code (`about.fr.md` -> about)."""
    stem, dot, lang = file.stem.rpartition(".")
    if dot and lang.lower() in {language.code for language in config.languages}:
        return stem
    return file.stem


def _first_date(front: Mapping[str, Any], keys: Sequence[str], zone: Any) -> datetime | None:
    for key in keys:
        when = hugo_date(front.get(key), zone)
        if when is not None:
            return when
    return None


def _never_listed(front: Mapping[str, Any]) -> bool:
    build = front.get("_build") or front.get("build")
    if not isinstance(build, Mapping):
        return False
    listed = build.get("list", True)
    return listed is False or str(listed).lower() == "never"


def _draft(front: Mapping[str, Any]) -> bool:
    if "draft" in front:
        return _truthy(front["draft"])
    published = front.get("published")
    if isinstance(published, bool):
        return not published
    return False


def _truthy(value: object) -> bool:
    if isinstance(value, str):
        return value.strip().lower() in ("true", "1", "t", "yes")
    return bool(value)


def _text(value: object) -> str:
    if value is None:
        return ""
    return str(value).strip() if not isinstance(value, list | dict) else ""


def _names(value: object) -> tuple[str, ...]:
    """A taxonomy param as Hugo lists it: a string is one term, a list keeps its order."""
    if value is None:
        return ()
    items = value if isinstance(value, list) else [value]
    return tuple(str(item) for item in items if item is not None and str(item) != "")


def _author(front: Mapping[str, Any]) -> str | None:
    value = front.get("author", front.get("authors"))
    if isinstance(value, list):
        value = ", ".join(str(v) for v in value if isinstance(v, str | int))
    if isinstance(value, Mapping):
        value = value.get("name")
    return str(value).strip() or None if isinstance(value, str) else None


def _image(front: Mapping[str, Any]) -> str | None:
    for key in ("images", "image", "featured_image", "cover"):
        value = front.get(key)
        if isinstance(value, list):
            value = value[0] if value else None
        if isinstance(value, Mapping):
            value = value.get("image")
        if isinstance(value, str) and value.strip():
            return value.strip()
    return None
