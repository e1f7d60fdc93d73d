"""Markdown as Hugo's Goldmark renders it, close enough for summaries (markdown-it-py underneath).

sources.hugo_summary renders page content here: shortcodes (their inner text as written),
Goldmark's typographer, footnotes and definition lists, raw HTML left out unless `unsafe`.
"""

from __future__ import annotations

import re
from typing import Any

from markdown_it import MarkdownIt
from markdown_it.rules_core import StateCore

_OMITTED = "<!-- raw HTML omitted -->"
# `{{</* name */>}}`: how Hugo docs show a shortcode without running it.
_ESCAPED_SHORTCODE = re.compile(r"\{\{([<%])/\*(.*?)\*/([>%])\}\}", re.DOTALL)
_REF_SHORTCODE = re.compile(r"\{\{[<%]\s*(?:rel)?ref\s+\"([^\"]*)\"\s*[>%]\}\}")
_PAIRED_SHORTCODE = re.compile(
    r"\{\{<\s*([\w./-]+)(?:\s[^>]*?)?>\}\}(.*?)\{\{<\s*/\s*\1\s*>\}\}", re.DOTALL
)
_SHORTCODE_TAG = re.compile(r"\{\{[<%].*?[>%]\}\}", re.DOTALL)
_PLACEHOLDER = re.compile(r"HUGOSHORTCODE(\d+)END")
_FOOTNOTE_DEFINITION = re.compile(r"^\[\^[^\]\n]+\]:.*(?:\n(?: {4}|\t).*)*", re.MULTILINE)
_FOOTNOTE_REFERENCE = re.compile(r"\[\^([^\]\n]+)\]")
_DEFINITION = re.compile(r"(?<=\S\n):[ \t]+")
# `## Title {#id .class}`: Goldmark's heading attributes (on in Hugo by default).
_HEADING_ATTRIBUTES = re.compile(r"^(#{1,6}[ \t].*?)[ \t]*\{[#.][^}\n]*\}[ \t]*$", re.MULTILINE)
# Goldmark's typographer: dashes, ellipsis and angle quotes (quotes are markdown-it's).
_TYPOGRAPHY = (("---", "\u2014"), ("--", "\u2013"), ("...", "\u2026"), ("<<", "«"), (">>", "»"))


class HugoMarkdown:
    """Goldmark with Hugo's defaults (typographer, tables, strikethrough; `unsafe` as set)."""

    def __init__(self, *, unsafe_html: bool) -> None:
        self._markdown = MarkdownIt("commonmark", {"html": True, "typographer": True})
        self._markdown.enable(["table", "strikethrough", "smartquotes"])
        self._markdown.core.ruler.before("smartquotes", "goldmark_typography", _typography)
        if not unsafe_html:
            self._markdown.add_render_rule("html_block", _omitted_block)
            self._markdown.add_render_rule("html_inline", _omitted_inline)

    def render(self, body: str, *, is_html: bool) -> str:
        """The page body as HTML, with shortcodes replaced as Hugo's output would show them."""
        inner: list[str] = []

        def keep(text: str) -> str:
            inner.append(text)
            return f"HUGOSHORTCODE{len(inner) - 1}END"

        source = _ESCAPED_SHORTCODE.sub(lambda m: keep(f"{{{{{m[1]}{m[2]}{m[3]}}}}}"), body)
        source = _REF_SHORTCODE.sub(lambda m: m[1], source)
        source = _PAIRED_SHORTCODE.sub(lambda m: keep(m[2]), source)
        source = _SHORTCODE_TAG.sub("", source)
        if not is_html:
            source = _HEADING_ATTRIBUTES.sub(r"\1", _footnotes(_DEFINITION.sub("", source)))
            source = self._markdown.render(source)
        return _PLACEHOLDER.sub(lambda m: inner[int(m[1])], source)


def without_shortcodes(body: str) -> str:
    """The body with shortcode tags taken out (their inner text stays), for an excerpt."""
    return _SHORTCODE_TAG.sub("", _REF_SHORTCODE.sub(lambda m: m[1], body))


def _footnotes(source: str) -> str:
    """Goldmark numbers footnote references and moves the notes to the end: number them, drop
    the notes (a summary never reaches them)."""
    numbers: dict[str, int] = {}

    def number(match: re.Match[str]) -> str:
        return str(numbers.setdefault(match[1], len(numbers) + 1))

    source = _FOOTNOTE_DEFINITION.sub("", source)
    return _FOOTNOTE_REFERENCE.sub(number, source)


def _typography(state: StateCore) -> None:
    for token in state.tokens:
        if token.type != "inline" or not token.children:
            continue
        for child in token.children:
            if child.type == "text":
                for old, new in _TYPOGRAPHY:
                    child.content = child.content.replace(old, new)


def _omitted_block(*_args: Any) -> str:
    return _OMITTED + "\n"


def _omitted_inline(*_args: Any) -> str:
    return _OMITTED
