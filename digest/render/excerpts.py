"""Excerpts for the email: Markdown to sanitised HTML with absolute links, cut to a length, as text.

selection ─► render (excerpts): what the `markdown`, `plaintext` and `absolute_url` filters do.
"""

from __future__ import annotations

import html
import re
import textwrap
from html.parser import HTMLParser
from typing import TYPE_CHECKING
from urllib.parse import urljoin, urlsplit

import nh3
from markdown_it import MarkdownIt

from digest.sources.markdown import drop_kramdown_syntax

if TYPE_CHECKING:
    from digest.settings import SiteSettings

_EXCERPT_TAGS = {
    "p", "br", "a", "em", "strong", "b", "i", "code", "pre", "ul", "ol", "li", "blockquote",
    "h1", "h2", "h3", "h4", "h5", "h6", "img", "hr", "del", "s", "sup", "sub",
    "table", "thead", "tbody", "tr", "th", "td",
}  # fmt: skip
_EXCERPT_ATTRIBUTES = {"a": {"href", "title"}, "img": {"src", "alt", "title"}}
_URL_SCHEMES = {"http", "https", "mailto"}
_LIQUID_URL = re.compile(
    r"\{\{\s*(?:'([^']*)'|\"([^\"]*)\")\s*\|\s*(relative_url|absolute_url)\s*\}\}"
)
_LIQUID_SITE = re.compile(r"\{\{\s*site\.(baseurl|url)\s*\}\}")
# Visible characters of one excerpt; lowered for a segment whose HTML would pass the budget.
EXCERPT_MAX_CHARS = 2_000
EXCERPT_MIN_CHARS = 200
_VOID_TAGS = frozenset({"br", "img", "hr"})
_SRCLESS_IMAGE = re.compile(r"<img(?![^>]*\ssrc=)[^>]*>")


def one_line(text: str) -> str:
    """Whitespace (CR/LF included) collapsed to single spaces: safe for a header."""
    return " ".join(text.split())


class _TextFromHtml(HTMLParser):
    """Sanitised excerpt HTML to readable plain text: paragraphs, list bullets, link targets."""

    _BLOCKS = frozenset(
        {"p", "div", "h1", "h2", "h3", "h4", "h5", "h6", "blockquote", "pre", "ul", "ol"}
        | {"table", "tr", "hr"}
    )

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.blocks: list[tuple[str, str]] = []  # (kind, text); kind: "p", "pre", "li"
        self._buf: list[str] = []
        self._kind = "p"
        self._pre = 0
        self._links: list[tuple[str, int]] = []
        self._lists: list[list[int]] = []  # per open list: [is_ordered, counter]
        self._quote = 0

    def _flush(self) -> None:
        text = "".join(self._buf)
        self._buf = []
        if self._kind != "pre":
            text = one_line(text)
        if self._quote and self._kind == "p":
            self._kind = "quote"
        if text.strip():
            self.blocks.append((self._kind, text.strip("\n")))
        self._kind = "p"

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in self._BLOCKS or tag == "li":
            self._flush()
        if tag == "pre":
            self._pre += 1
            self._kind = "pre"
        elif tag in ("ul", "ol"):
            self._lists.append([tag == "ol", 0])
        elif tag == "blockquote":
            self._quote += 1
        elif tag == "li":
            self._kind = "li"
            marker = "-"
            if self._lists and self._lists[-1][0]:
                self._lists[-1][1] += 1
                marker = f"{self._lists[-1][1]}."
            self._buf.append(f"{marker} ")
        elif tag == "br":
            self._buf.append("\n" if self._pre else " ")
        elif tag == "a":
            self._links.append((dict(attrs).get("href") or "", len("".join(self._buf))))
        elif tag in ("td", "th"):
            self._buf.append(" ")

    def handle_endtag(self, tag: str) -> None:
        if tag == "a" and self._links:
            href, start = self._links.pop()
            shown = "".join(self._buf)[start:].strip()
            if href and href.rstrip("/") != shown.rstrip("/") and not href.startswith("mailto:"):
                self._buf.append(f" ({href})")
        elif tag == "pre":
            self._pre = max(0, self._pre - 1)
            self._flush()
        elif tag in ("ul", "ol") and self._lists:
            self._lists.pop()
            self._flush()
        elif tag == "blockquote":
            self._flush()
            self._quote = max(0, self._quote - 1)
        elif tag in self._BLOCKS or tag == "li":
            self._flush()

    def handle_data(self, data: str) -> None:
        self._buf.append(data)

    def text(self, width: int) -> str:
        self._flush()
        out: list[str] = []
        for kind, block in self.blocks:
            if kind == "pre":
                out.append(textwrap.indent(block, "    "))
            elif kind == "quote":
                wrapped = textwrap.fill(
                    block, width - 2, break_long_words=False, break_on_hyphens=False
                )
                out.append(textwrap.indent(wrapped, "> ", lambda line: True))
            elif kind == "li":
                out.append(
                    textwrap.fill(
                        block,
                        width,
                        subsequent_indent="  ",
                        break_long_words=False,
                        break_on_hyphens=False,
                    )
                )
            else:
                out.append(
                    textwrap.fill(block, width, break_long_words=False, break_on_hyphens=False)
                )
        # List items sit together; other blocks are separated by a blank line.
        joined = ""
        for i, piece in enumerate(out):
            if i:
                tight = self.blocks[i][0] == "li" and self.blocks[i - 1][0] == "li"
                joined += "\n" if tight else "\n\n"
            joined += piece
        return joined


class _Truncator(HTMLParser):
    """Re-emits well-formed (sanitised) HTML up to `limit` visible characters, closing tags."""

    def __init__(self, limit: int) -> None:
        super().__init__(convert_charrefs=True)
        self.left = limit
        self.out: list[str] = []
        self.open: list[str] = []
        self.cut = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if self.cut:
            return
        rendered = "".join(
            f' {k}="{html.escape(v, quote=True)}"' if v is not None else f" {k}" for k, v in attrs
        )
        self.out.append(f"<{tag}{rendered}>")
        if tag not in _VOID_TAGS:
            self.open.append(tag)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.handle_starttag(tag, attrs)

    def handle_endtag(self, tag: str) -> None:
        if self.cut or tag in _VOID_TAGS:
            return
        if tag in self.open:
            while self.open:
                top = self.open.pop()
                self.out.append(f"</{top}>")
                if top == tag:
                    break

    def handle_data(self, data: str) -> None:
        if self.cut:
            return
        if len(data) <= self.left:
            self.left -= len(data)
            self.out.append(html.escape(data, quote=False))
            return
        head = data[: self.left]
        head = head.rsplit(None, 1)[0] if " " in head.strip() else head
        self.out.append(html.escape(head.rstrip(" ,;:.-"), quote=False) + "…")
        self.cut = True

    def result(self) -> str:
        self.close()
        return "".join(self.out) + "".join(f"</{tag}>" for tag in reversed(self.open))


def truncate_html(fragment: str, limit: int) -> str:
    """`fragment` cut after about `limit` visible characters, with an ellipsis, tags closed."""
    parser = _Truncator(limit)
    parser.feed(fragment)
    return parser.result() if parser.cut else fragment


def html_to_text(fragment: str, width: int = 72) -> str:
    """Plain text of an HTML fragment, wrapped at `width` (URLs are never broken)."""
    parser = _TextFromHtml()
    parser.feed(fragment)
    parser.close()
    return parser.text(width)


class ExcerptFormatter:
    """Markdown excerpts to sanitised HTML (links and images made absolute) and to plain text."""

    def __init__(self, site: SiteSettings) -> None:
        self.site = site
        self.base = site.root_url + "/"
        self._md = MarkdownIt("commonmark", {"html": True}).enable("table")
        self._cleaner = nh3.Cleaner(
            tags=_EXCERPT_TAGS,
            clean_content_tags={"script", "style"},
            attributes=_EXCERPT_ATTRIBUTES,
            attribute_filter=self._filter_attribute,
            url_schemes=_URL_SCHEMES,
            link_rel="noopener",
        )
        self.limit = EXCERPT_MAX_CHARS
        self._html_cache: dict[tuple[int, str], str] = {}
        self._text_cache: dict[tuple[int, int, str], str] = {}

    def _filter_attribute(self, tag: str, attribute: str, value: str) -> str | None:
        if attribute in ("href", "src"):
            return self.absolute(value)
        return value

    def absolute(self, url: str) -> str | None:
        """`url` made absolute against the site root; None for a scheme we do not allow."""
        url = url.strip()
        if not url:
            return None
        joined = urljoin(self.base, url)
        scheme = urlsplit(joined).scheme.lower()
        return joined if scheme in _URL_SCHEMES else None

    def _expand_liquid(self, source: str) -> str:
        # The few Liquid URL forms Jekyll authors put in links; other Liquid stays as written.
        def url(match: re.Match[str]) -> str:
            path = match.group(1) if match.group(1) is not None else match.group(2)
            path = "/" + path.lstrip("/")
            if match.group(3) == "absolute_url":
                return self.site.root_url + path
            return self.site.baseurl + path

        source = _LIQUID_URL.sub(url, source)
        return _LIQUID_SITE.sub(
            lambda m: self.site.baseurl if m.group(1) == "baseurl" else self.site.url, source
        )

    def to_html(self, markdown: str) -> str:
        """Sanitised HTML of a Markdown excerpt (not yet marked safe)."""
        key = (self.limit, markdown)
        cached = self._html_cache.get(key)
        if cached is None:
            rendered = self._md.render(drop_kramdown_syntax(self._expand_liquid(markdown)))
            cleaned = self._cleaner.clean(rendered).strip()
            if "<img" in cleaned:  # an image whose src was not allowed (a data: URI) goes
                cleaned = _SRCLESS_IMAGE.sub("", cleaned)
            cached = truncate_html(cleaned, self.limit)
            self._html_cache[key] = cached
        return cached

    def to_text(self, markdown: str, width: int = 72) -> str:
        """Plain text of a Markdown excerpt, for the text part."""
        key = (self.limit, width, markdown)
        cached = self._text_cache.get(key)
        if cached is None:
            cached = html_to_text(self.to_html(markdown), width)
            self._text_cache[key] = cached
        return cached
