"""Liquid in post excerpts, rendered as Jekyll does: `site`, `page`, Jekyll's filters and tags.

posts ─► liquid: an excerpt's `{{ }}` and `{% %}` become text before it reaches an email.
"""

from __future__ import annotations

import html
import json
import logging
import re
from collections.abc import Callable, Iterable, Mapping
from datetime import date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO
from urllib.parse import quote

from liquid import Mode
from liquid.ast import Node
from liquid.exceptions import LiquidError, ResourceLimitError
from liquid.parser import get_parser
from liquid.tag import Tag
from liquid.token import TOKEN_EOF, TOKEN_EXPRESSION, TOKEN_TAG, Token

from digest.sources.jekyll.includes import IncludeRelativeTag, IncludeTag, include_path
from digest.sources.jekyll.limits import LimitedEnvironment, describe_limit

if TYPE_CHECKING:
    from liquid import BoundTemplate
    from liquid.ast import BlockNode
    from liquid.context import RenderContext
    from liquid.stream import TokenStream

log = logging.getLogger(__name__)

_LIQUID = re.compile(r"\{%.*?%\}|\{\{.*?\}\}", flags=re.DOTALL)
_UNKNOWN = re.compile(r"unknown filter '([^']+)'|unexpected tag '([^']+)'")


class JekyllLiquid(LimitedEnvironment):
    """A Liquid environment with Jekyll's filters and tags, for one site's posts.

    Errors never stop a render: an unknown tag or filter, or an include that cannot be read,
    renders as nothing and is reported in one warning line per post, so no raw `{% %}` reaches
    a mail.
    """

    def __init__(
        self,
        *,
        url: str,
        baseurl: str,
        post_urls: Mapping[str, str],
        markdown: Callable[[str], str],
        site_root: Path | None = None,
        includes_dir: Path | None = None,
    ) -> None:
        super().__init__(tolerance=Mode.LAX, strict_filters=True)
        self.site_url = url
        self.baseurl = baseurl
        # Jekyll source path ("_posts/2020-01-01-x.md") -> URL path ("/2020/01/01/x.html").
        self.post_urls = post_urls
        self.markdown = markdown
        self.site_root = site_root or Path(".")
        self.includes_dir = includes_dir or self.site_root / "_includes"
        self._includes: dict[Path, BoundTemplate] = {}
        self._problems: list[str] = []
        self._where = ""
        for name, func in _jekyll_filters(self).items():
            self.add_filter(name, func)
        self.add_tag(LinkTag)
        self.add_tag(PostUrlTag)
        self.add_tag(HighlightTag)
        self.add_tag(IncludeTag)
        self.add_tag(IncludeRelativeTag)

    def error(
        self,
        exc: type[LiquidError] | LiquidError,
        msg: str | None = None,
        token: Token | None = None,
    ) -> None:
        """Note an unknown tag or filter (and other Liquid mistakes) for the post's one warning
        line; never raise, but for a limit: that stops the whole render (render_excerpt
        reports it)."""
        if isinstance(exc, ResourceLimitError):
            raise exc
        if isinstance(exc, type):
            text = msg or exc.__name__
        else:
            text = str(exc.args[0]) if exc.args else type(exc).__name__
        match = _UNKNOWN.search(text)
        key = match.group(0) if match else (text.splitlines() or ["error"])[0]
        if key not in self._problems:
            self._problems.append(key)

    def render_excerpt(self, source: str, *, page: Mapping[str, Any], site: Any, where: str) -> str:
        """`source` with its Liquid rendered; `where` names the post in any warning."""
        if "{{" not in source and "{%" not in source:
            return source
        self._where = where
        self._problems = []
        try:
            return self.from_string(source).render(page=page, site=site)
        except ResourceLimitError as exc:
            # One warning per post: its Liquid is left out, the rest of the post is kept.
            self._problems = []
            log.warning("%s: Liquid stopped at a limit: %s", where, describe_limit(exc))
            return _LIQUID.sub("", source)
        except LiquidError as exc:  # a mistake LAX mode still raises (e.g. a broken block)
            self.error(exc)
            return _LIQUID.sub("", source)
        finally:
            if self._problems:
                problems = "; ".join(self._problems)
                log.warning("%s: Liquid %s (rendered as nothing)", where, problems)

    def include_file(self, tag: str, name: str, page: Any) -> Path | None:
        """The file an include tag names (see includes.include_path)."""
        return include_path(
            tag, name, includes_dir=self.includes_dir, site_root=self.site_root, page=page
        )

    def parse_include(self, path: Path) -> BoundTemplate:
        """An include file parsed once per load (its text as written: Jekyll keeps any
        front matter an include has)."""
        template = self._includes.get(path)
        if template is None:
            text = path.read_text(encoding="utf-8-sig", errors="replace")
            template = self.from_string(text)
            self._includes[path] = template
        return template

    def relative_url(self, value: object) -> str:
        """Jekyll's `relative_url`: the site's baseurl in front of a site path."""
        text = "" if value is None else str(value)
        if re.match(r"^[A-Za-z][A-Za-z0-9+.-]*:", text) or text.startswith("//"):
            return text
        path = text if text.startswith("/") else "/" + text
        return (self.baseurl + path) if self.baseurl else path

    def absolute_url(self, value: object) -> str:
        """Jekyll's `absolute_url`: `url` + `baseurl` in front of a site path."""
        relative = self.relative_url(value)
        if relative.startswith("/") and not relative.startswith("//"):
            return self.site_url + relative
        return relative

    def post_path_url(self, reference: str) -> str | None:
        """The URL path of the post at a source path or a `post_url` name, or None."""
        reference = reference.strip().strip("'\"").lstrip("/")
        found = self.post_urls.get(reference)
        if found is not None:
            return found
        for path, url in self.post_urls.items():  # post_url: "2010-07-21-name" or "dir/name"
            stem = path.rsplit(".", 1)[0]
            if stem.endswith("/" + reference) or stem.split("/_posts/")[-1] == reference:
                return url
        return None


def _jekyll_filters(env: JekyllLiquid) -> dict[str, Callable[..., Any]]:
    """Jekyll's own filters (lib/jekyll/filters*.rb) that excerpts use."""
    return {
        "relative_url": env.relative_url,
        "absolute_url": env.absolute_url,
        "markdownify": lambda value: env.markdown(str(value or "")),
        "date_to_xmlschema": _xmlschema,
        "date_to_rfc822": lambda value: _as_datetime(value, "%a, %d %b %Y %H:%M:%S %z"),
        "date_to_string": lambda value, *_: _as_datetime(value, "%d %b %Y"),
        "date_to_long_string": lambda value, *_: _as_datetime(value, "%d %B %Y"),
        "jsonify": lambda value: json.dumps(value, default=str, ensure_ascii=False),
        "xml_escape": lambda value: html.escape(str(value or ""), quote=True),
        "cgi_escape": lambda value: quote(str(value or ""), safe="").replace("%20", "+"),
        "uri_escape": lambda value: quote(str(value or ""), safe="!*'();:@&=+$,/?#[]-_.~"),
        "number_of_words": lambda value: len(str(value or "").split()),
        "normalize_whitespace": lambda value: " ".join(str(value or "").split()),
        "smartify": lambda value: str(value or ""),
        "slugify": lambda value, *_: re.sub(r"[\W_]+", "-", str(value or "")).strip("-").lower(),
        "array_to_sentence_string": _sentence,
        "inspect": lambda value: repr(value),
    }


def _xmlschema(value: object) -> str:
    if isinstance(value, datetime):
        return value.isoformat(timespec="seconds")
    return _as_datetime(value, "%Y-%m-%dT%H:%M:%S")


def _as_datetime(value: object, pattern: str) -> str:
    if isinstance(value, datetime):
        return value.strftime(pattern)
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day).strftime(pattern)
    return "" if value is None else str(value)


def _sentence(value: object, connector: str = "and") -> str:
    items = [str(v) for v in value] if isinstance(value, list) else [str(value)]
    if len(items) <= 2:
        return f" {connector} ".join(items)
    return ", ".join(items[:-1]) + f", {connector} " + items[-1]


def _tag_argument(stream: TokenStream, *, block: bool) -> tuple[Token, str]:
    """The tag's token and the raw text after its name (`{% link a/b.md %}` -> `a/b.md`).

    An inline tag leaves the stream on its last token (the parser moves on); a block tag
    moves past it, to the block's first token.
    """
    token = stream.current
    text = ""
    if stream.peek.kind == TOKEN_EXPRESSION:
        next(stream)
        text = stream.current.value
    if block:
        next(stream)
    return token, text


class _UrlNode(Node):
    """`{% link path %}` / `{% post_url name %}`: the post's URL with the site's baseurl."""

    __slots__ = ("reference", "tag")

    def __init__(self, token: Token, tag: str, reference: str) -> None:
        super().__init__(token)
        self.tag = tag
        self.reference = reference
        self.blank = False

    def __str__(self) -> str:
        return f"{{% {self.tag} {self.reference} %}}"

    def render_to_output(self, context: RenderContext, buffer: TextIO) -> int:
        env = context.env
        assert isinstance(env, JekyllLiquid)
        found = env.post_path_url(self.reference)
        if found is None:
            problem = f"{self.tag}: no post {self.reference.strip()!r}"
            env.error(LiquidError(problem, token=self.token))
            return 0
        return buffer.write(env.relative_url(found))

    def children(
        self, static_context: RenderContext, *, include_partials: bool = True
    ) -> Iterable[Node]:
        return ()


class LinkTag(Tag):
    """Jekyll's `link` tag."""

    name = "link"
    block = False

    def parse(self, stream: TokenStream) -> Node:
        token, text = _tag_argument(stream, block=False)
        return _UrlNode(token, self.name, text)


class PostUrlTag(LinkTag):
    """Jekyll's `post_url` tag."""

    name = "post_url"


class _HighlightNode(Node):
    """`{% highlight lang %}code{% endhighlight %}`: Jekyll's figure, without colours."""

    __slots__ = ("block", "language")

    def __init__(self, token: Token, language: str, block: BlockNode) -> None:
        super().__init__(token)
        self.language = language
        self.block = block
        self.blank = False

    def __str__(self) -> str:
        return f"{{% highlight {self.language} %}}{self.block}{{% endhighlight %}}"

    def render_to_output(self, context: RenderContext, buffer: TextIO) -> int:
        inner = context.get_buffer(buffer)
        self.block.render(context, inner)
        code = html.escape(inner.getvalue().strip("\n"), quote=False)
        language = html.escape(self.language, quote=True)
        return buffer.write(
            f'<figure class="highlight"><pre><code class="language-{language}" '
            f'data-lang="{language}">{code}</code></pre></figure>'
        )

    def children(
        self, static_context: RenderContext, *, include_partials: bool = True
    ) -> Iterable[Node]:
        yield self.block


class HighlightTag(Tag):
    """Jekyll's `highlight` block (the code is shown, escaped; no syntax colours)."""

    name = "highlight"
    end = "endhighlight"

    def parse(self, stream: TokenStream) -> Node:
        token, text = _tag_argument(stream, block=True)
        language = (text.split() or ["text"])[0]
        block = get_parser(self.env).parse_block(stream, frozenset((self.end, TOKEN_EOF)))
        stream.expect(TOKEN_TAG, value=self.end)
        return _HighlightNode(token, language, block)
