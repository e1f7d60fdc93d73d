"""Markdown as Jekyll's kramdown shows it: CommonMark with kramdown's own extras dropped.

sources ─► markdown: Jekyll's `markdownify`; render's excerpts drop the same extras.
"""

from __future__ import annotations

import re
from functools import cache
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from markdown_it import MarkdownIt

# kramdown's own syntax that CommonMark would show as text: attribute lists (`{: .class}`,
# `{:.note}`, `{::options /}`), footnote markers (`[^1]`) and footnote definitions.
_KRAMDOWN_ATTRIBUTES = re.compile(r"[ \t]*\{:(?!:)(?:[^}\"']|\"[^\"]*\"|'[^']*')*\}")
_KRAMDOWN_EXTENSION = re.compile(r"\{::(\w+)[^}]*?/\}|\{::(\w+)[^}]*\}.*?\{:/\1?\}", re.S)
_FOOTNOTE_DEFINITION = re.compile(r"^ {0,3}\[\^[^\]]+\]:.*(?:\n(?: {4}|\t).*)*\n?", re.M)
_FOOTNOTE_MARKER = re.compile(r"\[\^[^\]\s]+\]")
# A list kramdown replaces by a table of contents of the headers (`* x` then `{:toc}`).
_KRAMDOWN_TOC = re.compile(r"^(?:[ \t]*(?:[*+-]|\d+\.)[ \t].*\n)+[ \t]*\{:\s*toc\s*\}[ \t]*$", re.M)
_ATX_HEADER = re.compile(r"^(#{1,6})[ \t]+(.+?)[ \t#]*$", re.M)
# kramdown reads Markdown inside an HTML element marked markdown="1"; CommonMark does after a
# blank line.
_MARKDOWN_IN_HTML = re.compile(r"^(<\w+\b[^>\n]*\bmarkdown=[\"']?1[\"']?[^>\n]*>)[ \t]*\n", re.M)
# A link definition whose URL has spaces: kramdown reads it, CommonMark shows it as text
# unless the URL is in <>.
_SPACED_DEFINITION = re.compile(
    r"^( {0,3}\[[^\]\n]+\]:[ \t]*)(?!<)([^\s\"'(][^\n\"']*?[ \t][^\n\"']*?\S)"
    r"([ \t]+(?:\"[^\"\n]*\"|'[^'\n]*'|\([^)\n]*\)))?[ \t]*$",
    re.M,
)


@cache
def _commonmark() -> MarkdownIt:
    from markdown_it import MarkdownIt  # imported when a post needs it, not at start-up

    return MarkdownIt("commonmark", {"html": True}).enable("table")


def markdown_to_html(markdown: str) -> str:
    """Markdown (kramdown's extras dropped) to HTML, unsanitised: Jekyll's `markdownify`."""
    return str(_commonmark().render(drop_kramdown_syntax(markdown)))


def drop_kramdown_syntax(markdown: str) -> str:
    """`markdown` without kramdown attribute lists, extensions and footnotes (no text lost);
    a `{:toc}` list becomes the headers' list, Markdown in a markdown="1" element and a link
    definition whose URL has spaces are read as kramdown reads them."""
    if "{:" in markdown:
        markdown = _KRAMDOWN_TOC.sub(lambda _m: _table_of_contents(markdown), markdown)
        markdown = _KRAMDOWN_EXTENSION.sub("", markdown)
        markdown = _KRAMDOWN_ATTRIBUTES.sub("", markdown)
    if "markdown=" in markdown:
        markdown = _MARKDOWN_IN_HTML.sub(r"\1\n\n", markdown)
    if "]:" in markdown:
        markdown = _SPACED_DEFINITION.sub(r"\1<\2>\3", markdown)
    if "[^" in markdown:
        markdown = _FOOTNOTE_DEFINITION.sub("", markdown)
        markdown = _FOOTNOTE_MARKER.sub("", markdown)
    return markdown


def _table_of_contents(markdown: str) -> str:
    """kramdown's {:toc}: a nested list of the headers (those marked .no_toc left out)."""
    headers = []
    for match in _ATX_HEADER.finditer(markdown):
        text = match.group(2)
        if "no_toc" in text:
            continue
        headers.append((len(match.group(1)), _KRAMDOWN_ATTRIBUTES.sub("", text).strip()))
    if not headers:
        return ""
    top = min(level for level, _text in headers)
    return "\n".join(f"{'  ' * (level - top)}* {text}" for level, text in headers)
