"""Markdown as Jekyll's kramdown shows it: CommonMark with kramdown's own extras dropped.

sources ─► markdown: Jekyll's `markdownify`; render's excerpts drop the same extras.
"""

from __future__ import annotations

import re

from markdown_it import MarkdownIt

# kramdown's own syntax that CommonMark would show as text: attribute lists (`{: .class}`,
# `{:.note}`, `{::options /}`), footnote markers (`[^1]`) and footnote definitions.
_KRAMDOWN_ATTRIBUTES = re.compile(r"[ \t]*\{:(?!:)(?:[^}\"']|\"[^\"]*\"|'[^']*')*\}")
_KRAMDOWN_EXTENSION = re.compile(r"\{::(\w+)[^}]*?/\}|\{::(\w+)[^}]*\}.*?\{:/\1?\}", re.S)
_FOOTNOTE_DEFINITION = re.compile(r"^ {0,3}\[\^[^\]]+\]:.*(?:\n(?: {4}|\t).*)*\n?", re.M)
_FOOTNOTE_MARKER = re.compile(r"\[\^[^\]\s]+\]")
_COMMONMARK = MarkdownIt("commonmark", {"html": True}).enable("table")


def markdown_to_html(markdown: str) -> str:
    """Markdown (kramdown's extras dropped) to HTML, unsanitised: Jekyll's `markdownify`."""
    return str(_COMMONMARK.render(drop_kramdown_syntax(markdown)))


def drop_kramdown_syntax(markdown: str) -> str:
    """`markdown` without kramdown attribute lists, extensions and footnotes (no text lost)."""
    if "{:" in markdown:
        markdown = _KRAMDOWN_EXTENSION.sub("", markdown)
        markdown = _KRAMDOWN_ATTRIBUTES.sub("", markdown)
    if "[^" in markdown:
        markdown = _FOOTNOTE_DEFINITION.sub("", markdown)
        markdown = _FOOTNOTE_MARKER.sub("", markdown)
    return markdown
