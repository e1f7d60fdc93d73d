"""The real sites beside their generators' oracles (../shared/realsites, or $DIGEST_REALSITES),
and how much of each oracle digest reads alike; tests that need them skip when they are absent.

Jekyll: every post with the config a user would write (the site's digest.yaml). Hugo: every
regular page of every language as Hugo sees it, and the posts of the default language's blog
section as `digest posts` lists them. Excerpts are compared as text, by similarity.
"""

from __future__ import annotations

import difflib
import html
import json
import os
import re
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from digest.config import load_settings
from digest.errors import BadDateError
from digest.render.excerpts import ExcerptFormatter
from digest.settings import SiteSettings
from digest.sources.hugo.reader import HugoPage, load_hugo_posts, read_hugo_site
from digest.sources.jekyll.reader import load_posts

_ROOT = Path(__file__).resolve().parents[2]
# ../shared/realsites from the repo root (a worktree under wt/ looks one level further up).
_CANDIDATES = [_ROOT.parent / "shared" / "realsites", _ROOT.parent.parent / "shared" / "realsites"]
REALSITES = Path(
    os.environ.get("DIGEST_REALSITES")
    or next((str(c) for c in _CANDIDATES if c.is_dir()), str(_CANDIDATES[0]))
)


def absent(what: Path) -> str:
    """The skip reason when `what` (a folder of real sites or feeds) is not there."""
    return f"no real sites at {what} (set DIGEST_REALSITES to the folder that holds them)"


def site_names(kind: str) -> list[str]:
    """The sites of one generator ("jekyll" or "hugo") that are present."""
    folder = REALSITES / kind
    return sorted(p.name for p in folder.iterdir() if p.is_dir()) if folder.is_dir() else []


_CJK = "\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uff00-\uffef"
_TYPOGRAPHIC = str.maketrans({"’": "'", "‘": "'", "“": '"', "”": '"', "–": "-", "—": "-"})
_WORD = re.compile(f"[{_CJK}]|[^\\s{_CJK}]+")


def similarity(ours: str, theirs: str) -> float:
    """How alike two texts are (0..1), word by word (whole posts stay quick to compare); a
    CJK character is a word. kramdown's and goldmark's typographic quotes and dashes count as
    the plain ones digest keeps."""
    mine = _WORD.findall(ours.translate(_TYPOGRAPHIC))
    other = _WORD.findall(theirs.translate(_TYPOGRAPHIC))
    if mine == other:
        return 1.0
    return difflib.SequenceMatcher(None, mine, other, autojunk=False).ratio()


@dataclass
class Agreement:
    """Per field, how many of the oracle's entries digest reads alike; what differed."""

    entries: int = 0
    same: Counter[str] = field(default_factory=Counter)
    excerpt: float = 0.0  # summed similarity
    wrong: list[str] = field(default_factory=list)

    def check(self, key: str, path: str, ours: object, theirs: object) -> None:
        if ours == theirs:
            self.same[key] += 1
        else:
            self.wrong.append(f"{path} {key}: {ours!r} != {theirs!r}")

    def share(self, key: str) -> float:
        return self.same[key] / self.entries if self.entries else 1.0

    @property
    def excerpt_similarity(self) -> float:
        return self.excerpt / self.entries if self.entries else 1.0

    def line(self, name: str, keys: tuple[str, ...]) -> str:
        shares = " ".join(f"{k} {self.share(k):.1%}" for k in keys)
        return f"{name}: {self.entries} entries; {shares}; excerpt {self.excerpt_similarity:.1%}"


def _text_of(formatter: ExcerptFormatter, excerpt: str) -> str:
    rendered = formatter.to_html(excerpt)
    return html.unescape(" ".join(re.sub(r"<[^>]+>", " ", rendered).split()))


def _whole(site: SiteSettings) -> ExcerptFormatter:
    formatter = ExcerptFormatter(site)
    formatter.limit = 10**9  # the whole excerpt, as the oracle has it (an email cuts it later)
    return formatter


def _oracle(kind: str, name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(
        (REALSITES / kind / name / "oracle.json").read_text(encoding="utf-8")
    )
    return data


# Jekyll ---------------------------------------------------------------------------------------

JEKYLL_FIELDS = ("found", "url", "date", "categories", "tags", "title", "slug", "status", "image")


def jekyll_agreement(name: str) -> Agreement:
    """Every post of the Jekyll site `name` against Jekyll's own `site.posts`."""
    folder = REALSITES / "jekyll" / name
    settings = load_settings(folder / "digest.yaml", environ={})
    loaded = load_posts(settings.site)
    ours = {p.id: p for p in loaded.posts}
    formatter = _whole(settings.site)
    result = Agreement()
    for entry in _oracle("jekyll", name)["posts"]:
        result.entries += 1
        path = entry["relative_path"]
        post = ours.get(path)
        if post is None:
            result.wrong.append(f"missing {path}")
            continue
        result.same["found"] += 1
        result.check("url", path, post.url, entry["abs"])
        # The oracle writes whole seconds.
        when = post.date.replace(microsecond=0)
        result.check("date", path, when, datetime.fromisoformat(entry["date"]))
        result.check("categories", path, list(post.categories), entry["categories"])
        result.check("tags", path, list(post.tags), entry["tags"])
        result.check("title", path, post.title, entry["title"])
        result.check("slug", path, post.slug, entry["slug"])
        # Every oracle post is one Jekyll published (drafts and future posts are not built).
        result.check("status", path, post.published and not post.draft, entry["draft"] is False)
        result.check("image", path, post.image, _jekyll_image(entry["image"], settings.site))
        text = _text_of(formatter, post.excerpt)
        result.excerpt += similarity(text, entry["excerpt"])
    return result


def _jekyll_image(value: object, site: SiteSettings) -> str | None:
    """The oracle's `page.image` as the absolute URL digest puts in a mail."""
    if isinstance(value, dict):
        value = value.get("path") or value.get("url") or value.get("feature")
    if not isinstance(value, str) or not value:
        return None
    if value.startswith(("http://", "https://")):
        return value
    return site.root_url + "/" + value.lstrip("/")


# Hugo -----------------------------------------------------------------------------------------

HUGO_FIELDS = (
    "found",
    "lang",
    "section",
    "bundle",
    "url",
    "abs",
    "date",
    "publish_date",
    "expiry_date",
    "lastmod",
    "draft",
    "published",
    "categories",
    "tags",
    "title",
    "slug",
)


def _iso(value: datetime | None) -> str | None:
    return value.replace(microsecond=0).isoformat() if value else None


def hugo_agreement(name: str) -> Agreement:
    """Every regular page of every language of the Hugo site `name` against Hugo's."""
    oracle = _oracle("hugo", name)
    now = datetime.fromisoformat(oracle["time"].replace("Z", "+00:00"))
    site = read_hugo_site(REALSITES / "hugo" / name / "site")
    pages = {(p.relative_path, p.lang): p for p in site.pages}
    formatter = _whole(SiteSettings(title=name, url="https://example.org"))
    result = Agreement()
    for entry in oracle["posts"]:
        result.entries += 1
        path = entry["path"]
        page = pages.pop((path, entry["lang"]), None)
        if page is None:
            result.wrong.append(f"missing {path} ({entry['lang']})")
            continue
        result.same["found"] += 1
        for key, ours, theirs in _hugo_facts(page, entry, now):
            result.check(key, path, ours, theirs)
        text = _text_of(formatter, page.summary.excerpt)
        result.excerpt += similarity(text, entry["excerpt"])
    result.wrong.extend(f"not a page in Hugo: {path} ({lang})" for path, lang in pages)
    return result


def _hugo_facts(page: HugoPage, entry: dict[str, Any], now: datetime) -> list[tuple[str, Any, Any]]:
    return [
        ("lang", page.lang, entry["lang"]),
        ("section", page.section, entry["section"]),
        ("bundle", page.bundle_type, entry["bundle_type"]),
        ("url", page.url, entry["url"]),
        ("abs", page.permalink, entry["abs"]),
        ("date", _iso(page.date), entry["date"]),
        ("publish_date", _iso(page.publish_date), entry["publish_date"]),
        ("expiry_date", _iso(page.expiry_date), entry["expiry_date"]),
        ("lastmod", _iso(page.lastmod), entry["lastmod"]),
        ("draft", page.draft, entry["draft"]),
        ("published", page.published_at(now), entry["published_default"]),
        ("categories", list(page.categories), [str(c) for c in entry["categories"]]),
        ("tags", list(page.tags), [str(t) for t in entry["tags"]]),
        ("title", page.title, entry["title"]),
        ("slug", page.slug, entry["slug"]),
    ]


BLOG_FIELDS = ("found", "url", "date", "categories", "tags", "title", "status")


def hugo_blog_agreement(name: str) -> Agreement:
    """The posts `digest posts --all --drafts` lists for the site's blog section in its default
    language, against Hugo's pages there (an undated page: a bad-date problem)."""
    oracle = _oracle("hugo", name)
    now = datetime.fromisoformat(oracle["time"].replace("Z", "+00:00"))
    root = REALSITES / "hugo" / name / "site"
    lang, section = oracle.get("default_language") or "en", oracle["main_section"]
    loaded = load_hugo_posts(root, now=now, sections=(section,), lang=lang, include_drafts=True)
    ours = {p.id: p for p in loaded.posts}
    prefix = str(root) + "/"
    undated = {
        p.path.removeprefix(prefix): p for p in loaded.problems if isinstance(p, BadDateError)
    }
    formatter = _whole(SiteSettings(title=name, url="https://example.org"))
    result = Agreement()
    for entry in oracle["posts"]:
        if entry["lang"] != lang or entry["section"] != section:
            continue
        result.entries += 1
        path = entry["path"]
        post = ours.get(path)
        if post is None and path in undated and entry["date"] is None:
            bad = undated[path]
            result.same.update(("found", "date", "categories", "tags", "status"))
            result.check("url", path, bad.url, entry["abs"])
            result.check("title", path, bad.title, entry["title"])
            result.excerpt += 1.0  # not sent, so not compared
            continue
        if post is None:
            result.wrong.append(f"missing {path}")
            continue
        result.same["found"] += 1
        result.check("url", path, post.url, entry["abs"])
        result.check("date", path, _iso(post.date), entry["date"])
        result.check("categories", path, list(post.categories), entry["categories"])
        result.check("tags", path, list(post.tags), [str(t) for t in entry["tags"]])
        result.check("title", path, post.title, entry["title"])
        # A page Hugo does not render (no URL) is listed but not sent.
        sendable = entry["published_default"] and bool(entry["url"])
        ours_sendable = post.published and not post.draft and post.date <= now
        result.check("status", path, (post.draft, ours_sendable), (entry["draft"], sendable))
        result.excerpt += similarity(_text_of(formatter, post.excerpt), entry["excerpt"])
    return result
