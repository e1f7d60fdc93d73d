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

from digest.errors import BadDateError, ConfigError, PostError
from digest.settings import SiteSettings
from digest.sources import Source
from digest.sources.front_matter import FrontMatterError
from digest.sources.guards import MAX_FILE_BYTES, read_post_bytes
from digest.sources.hugo.config import HugoConfig, load_hugo_config
from digest.sources.hugo.content import ContentSource, content_sources
from digest.sources.hugo.dates import hugo_date
from digest.sources.hugo.front import split_content
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
    bad_date: str | None = None  # a date value Hugo cannot read (the page is undated)
    in_draft_section: bool = False

    @cached_property
    def summary(self) -> Summary:
        """Made when asked for: rendering every page of a large site takes seconds."""
        return self.summaries.summary(
            self.content,
            self.params.get("summary"),
            is_html=self.is_html,
            cjk=self.params.get("iscjklanguage"),
        )

    def is_future(self, now: datetime) -> bool:
        return self.publish_date is not None and self.publish_date > now

    def is_expired(self, now: datetime) -> bool:
        return self.expiry_date is not None and self.expiry_date < now

    def published_at(self, now: datetime) -> bool:
        """What a plain `hugo` build at `now` publishes: no draft, not future, not expired."""
        return (
            not self.draft
            and not self.in_draft_section
            and not self.is_future(now)
            and not self.is_expired(now)
        )


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


def _index_front(file: Path, max_bytes: int = MAX_FILE_BYTES) -> Mapping[str, Any] | None:
    """An `_index` file's front matter (for its `cascade`); None when it cannot be read (not
    a regular file, over `max_bytes`, not UTF-8, its front matter broken or refused)."""
    try:
        return split_content(read_post_bytes(file, max_bytes).decode("utf-8-sig")).front
    except (PostError, UnicodeDecodeError, FrontMatterError):
        return None


def read_hugo_site(root: Path, *, max_bytes: int = MAX_FILE_BYTES) -> HugoSite:
    """Every regular page of the Hugo site at `root`, in every language (a content file over
    `max_bytes`, or not a regular file, is a problem: one warning)."""
    config = load_hugo_config(root)
    summaries = SummaryMaker(
        config.summary_length, unsafe_html=config.unsafe_html, has_cjk=config.has_cjk
    )
    pages: list[HugoPage] = []
    problems: list[PostError] = []
    for source in content_sources(config, lambda file: _index_front(file, max_bytes)):
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
    pages = [
        page
        for page in site.pages
        if page.lang == language.code
        and page.section.lower() in wanted
        and (include_drafts or not page.draft)
    ]
    posts = [hugo_post(page, now) for page in pages if page.date is not None]
    problems = list(site.problems)
    # An undated page among dated ones is listed as bad-date; sections with no dated page at
    # all are the wrong sections: one hint names the ones that have dates.
    problems.extend(
        _bad_date(page)
        for page in pages
        if page.date is None and (posts or page.bad_date is not None)
    )
    if not posts:
        _hint_sections(site, language.code, chosen)
    posts.sort(key=lambda p: p.id)
    posts.sort(key=lambda p: p.date, reverse=True)
    log.debug("read %d Hugo posts (%s, %s) from %s", len(posts), language.code, chosen, root)
    return PostsLoad(tuple(posts), tuple(sorted(problems, key=lambda e: e.path)))


def _bad_date(page: HugoPage) -> BadDateError:
    """A page of the chosen sections whose date Hugo leaves zero: listed, never sent."""
    if page.bad_date is None:
        reason = "has no date (date, publishDate or lastmod)"
    else:
        reason = f"date {page.bad_date!r} is not a date Hugo reads, like 2025-11-27T09:00:00+01:00"
    return BadDateError(str(page.file), reason, title=page.title, url=page.permalink)


def _hint_sections(site: HugoSite, lang: str, chosen: Sequence[str]) -> None:
    """No dated page in the chosen sections: say which sections have some."""
    dated = Counter(
        p.section for p in site.pages if p.lang == lang and p.section and p.date is not None
    )
    names = " and ".join(chosen)
    verb = "have" if len(chosen) > 1 else "has"
    if not dated:
        log.warning("section %s %s no dated pages, and no other section has any", names, verb)
        return
    others = ", ".join(f"{s} has {n}" for s, n in dated.most_common(3))
    log.warning("section %s %s no dated pages; %s: set site.sections", names, verb, others)


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
        # A page Hugo does not render (`_build: render: never`) has no URL to send.
        published=not (page.is_future(now) and page.date <= now)
        and not page.is_expired(now)
        and bool(page.permalink)
        and not page.in_draft_section,
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
    if source.cascade:
        front = {**source.cascade, **front}
    if _build_option(front, "list") == "never":
        return None

    directory = source.directory
    bundle_dir = ""
    if source.bundle:
        directory, _, bundle_dir = directory.rpartition("/")
    base_name = bundle_dir or _translation_base_name(file, config)
    zone = config.time_zone
    dates: dict[str, datetime | None] = {}
    file_slug = None
    for name, keys in config.date_keys.items():
        dates[name], found_slug = _first_date(front, keys, zone, file, base_name)
        file_slug = file_slug if file_slug is not None else found_slug
    bad_date = None
    if dates["date"] is None:
        unread = [front[k] for k in config.date_keys["date"] if front.get(k) not in (None, "")]
        bad_date = str(unread[0]) if unread else None
    section = directory.split("/")[0]
    title = _title(front.get("title"))
    slug = _text(front.get("slug")).strip("-")
    if file_slug is not None and "slug" not in front:
        slug = file_slug  # a date in the file name: the rest of the name is the slug
    parts = UrlParts(
        section=section,
        sections=tuple(p for p in directory.split("/") if p),
        directory=directory,
        filename=base_name,
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
    if _build_option(front, "render") == "never":
        relative = absolute = ""  # a page Hugo lists but does not write has no URL
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
        bad_date=bad_date,
        in_draft_section=source.in_draft_section,
    )


def _translation_base_name(file: Path, config: HugoConfig) -> str:
    """The file name without its extension and its language code (`about.fr.md` -> about)."""
    stem, dot, lang = file.stem.rpartition(".")
    if dot and lang.lower() in {language.code for language in config.languages}:
        return stem
    return file.stem


def _first_date(
    front: Mapping[str, Any], keys: Sequence[str], zone: Any, file: Path, base_name: str
) -> tuple[datetime | None, str | None]:
    """The first date a handler finds (Hugo's chain), and the slug `:filename` gives."""
    for key in keys:
        if key == ":filename":
            when, slug = filename_date(base_name, zone)
            if when is not None:
                return when, slug
        elif key == ":filemodtime":
            return datetime.fromtimestamp(file.stat().st_mtime, zone), None
        elif not key.startswith(":"):
            when = hugo_date(front.get(key), zone)
            if when is not None:
                return when, None
    return None, None


def filename_date(name: str, zone: Any) -> tuple[datetime | None, str | None]:
    """Hugo's dateAndSlugFromBaseFilename: `2021-12-14-a-title` is that day and `a-title`."""
    stem = name.rsplit(".", 1)[0] if "." in name else name
    if len(stem) < 10:
        return None, None
    when = hugo_date(stem[:10], zone)
    if when is None:
        return None, None
    return when, stem[10:].strip(" -_")


def _build_option(front: Mapping[str, Any], option: str) -> str:
    """Hugo 0.111's `_build` list/render value: always, never or local."""
    build = front.get("_build")
    if not isinstance(build, Mapping):
        return "always"
    value = build.get(option, "always")
    if value is False or str(value).lower() in ("never", "false"):
        return "never"
    return "local" if str(value).lower() == "local" else "always"


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


def _title(value: object) -> str:
    """The title as Hugo keeps it (cast.ToString: spaces around it stay)."""
    if value is None or isinstance(value, list | dict):
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


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
