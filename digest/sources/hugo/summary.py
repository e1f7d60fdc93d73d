"""A Hugo page's summary as Hugo 0.111 makes it: `summary` front matter, the part before
<!--more-->, or the first `summaryLength` words of the text, carried on to the sentence's end.

sources.hugo stores the result as the post's excerpt (Markdown or HTML, sanitised at render).
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass

from digest.sources.hugo.front import SUMMARY_DIVIDER
from digest.sources.hugo.markdown import HugoMarkdown, without_shortcodes

_TAG = re.compile(r"<[^>]*>")
_COMMENT = re.compile(r"<!--.*?-->", re.DOTALL)
# What a script or style element holds is not text (the oracle's plain text leaves it out).
_SCRIPT = re.compile(r"<(script|style)\b[^>]*>.*?</\1\s*>", re.DOTALL | re.IGNORECASE)
_END_OF_SENTENCE = frozenset('.?!"\n')
_OPENING_CHARS = 6000
_REFERENCE = re.compile(r"^ {0,3}\[[^\]\n]+\]:[ \t]*\S.*$", re.MULTILINE)
# Hugo's cjkRe: text in a CJK script makes a page count its summary in characters.
_CJK = re.compile(
    "[\u1100-\u11ff\u2e80-\u2fdf\u3005\u3007\u3021-\u3029\u3038-\u303b\u3040-\u30ff"
    "\u3131-\u318e\u31f0-\u31ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff"
    "\uff66-\uff9f\U00020000-\U0003134f]"
)
# A data: URI holds no words; cut short, it keeps a long one from pushing the text out of the
# part of the page the summary is made from.
_DATA_URI = re.compile(r"data:[^\s)\"'<>]{64,}")


@dataclass(frozen=True)
class Summary:
    """The excerpt to render (Markdown or HTML), its plain text, and whether text was left out."""

    excerpt: str
    plain: str
    truncated: bool


class SummaryMaker:
    """Hugo's summaries for one site (its summaryLength and goldmark `unsafe` setting)."""

    def __init__(self, summary_length: int, *, unsafe_html: bool, has_cjk: bool = False) -> None:
        self.summary_length = summary_length
        self.has_cjk = has_cjk
        self._markdown = HugoMarkdown(unsafe_html=unsafe_html)

    def render(self, body: str, *, is_html: bool) -> str:
        """The content as HTML (Markdown rendered; an .html page as written)."""
        return self._markdown.render(body, is_html=is_html)

    def summary(
        self, body: str, front_summary: object, *, is_html: bool, cjk: object = None
    ) -> Summary:
        """The page's summary, by Hugo's order of preference."""
        if isinstance(front_summary, str) and front_summary.strip():
            # Hugo 0.111 shows the `summary` value as written (not rendered as Markdown).
            text = front_summary.strip()
            return Summary(text, strip_html(text).strip(), False)
        if SUMMARY_DIVIDER in body:
            head, _divider, tail = body.partition(SUMMARY_DIVIDER)
            excerpt = without_shortcodes(head).strip()
            plain = strip_html(self.render(head, is_html=is_html)).strip()
            return Summary(excerpt, plain, bool(tail.strip()))
        if "data:" in body:
            body = _DATA_URI.sub("data:", body)
        plain = strip_html(self.render(self._opening(body, is_html), is_html=is_html))
        if cjk is True or (cjk is None and self.has_cjk and _CJK.search(body)):
            cut, truncated = truncate_by_rune(plain.split(), self.summary_length)
        else:
            cut, truncated = truncate_to_sentence(plain, self.summary_length)
        paragraphs = [html.escape(html.unescape(p.strip())) for p in cut.split("\n")]
        excerpt = "\n\n".join(f"<p>{p}</p>" for p in paragraphs if p)
        return Summary(excerpt, cut, truncated)

    def _opening(self, body: str, is_html: bool) -> str:
        """Enough of a long body for the summary: whole paragraphs, then every link reference
        definition (the summary's links may use them); rendering all of it is slow."""
        wanted = max(_OPENING_CHARS, self.summary_length * 40)
        cut = body.find("\n\n", wanted)
        if is_html or cut == -1:
            return body
        references = _REFERENCE.findall(body, cut)
        return body[:cut] + "\n\n" + "\n".join(references)


def strip_html(source: str) -> str:
    """Hugo's StripHTML: paragraph and line breaks become newlines, tags go, spaces collapse."""
    for old, new in (("\n", " "), ("</p>", "\n"), ("<br>", "\n"), ("<br />", "\n")):
        source = source.replace(old, new)
    text = _TAG.sub("", _COMMENT.sub("", _SCRIPT.sub("", source)))
    return re.sub(r"(\s)\s+", r"\1", text)


def truncate_to_sentence(text: str, words: int) -> tuple[str, bool]:
    """Hugo's TruncateWordsToWholeSentence: `words` words, then on to the sentence's end."""
    count = 0
    last_space = -1
    for index, char in enumerate(text):
        if char.isspace():
            count += 1
            last_space = index
            if count >= words:
                break
    if last_space == -1:
        return text, False
    for index in range(last_space, len(text)):
        if text[index] in _END_OF_SENTENCE:
            return text[: index + 1].strip(), index + 1 < len(text)
    return text, False


def truncate_by_rune(words: list[str], limit: int) -> tuple[str, bool]:
    """Hugo's TruncateWordsByRune (hasCJKLanguage): a CJK character counts as a word."""
    count = 0
    for index, word in enumerate(words):
        if count >= limit:
            return " ".join(words[:index]), True
        if word.isascii():
            count += 1
        elif count + len(word) < limit:
            count += len(word)
        else:
            for at in range(len(word)):
                if count >= limit:
                    return " ".join([*words[:index], word[:at]]), True
                count += 1
    return " ".join(words), False


def plain_excerpt(summary: Summary) -> str:
    """The summary's text as `.Summary | plainify` shows it, whitespace collapsed."""
    return " ".join(html.unescape(strip_html(summary.plain)).split())
