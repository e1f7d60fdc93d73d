"""Jekyll's `include` and `include_relative` tags, for the Liquid in post excerpts.

sources.jekyll.liquid ─► includes: `{% include youtube.html id=page.youtubeId %}` renders the
site's `_includes/youtube.html` with `include.id` set; `include_relative` reads beside the post
(jekyll/jekyll lib/jekyll/tags/include.rb). A file that cannot be read renders as nothing.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from io import StringIO
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from liquid.ast import Node
from liquid.exceptions import LiquidError
from liquid.tag import Tag
from liquid.token import TOKEN_EXPRESSION, Token

if TYPE_CHECKING:
    from liquid.context import RenderContext
    from liquid.stream import TokenStream

# Jekyll's IncludeTag::VALID_SYNTAX: name=value, the value quoted or a variable.
_PARAM = re.compile(
    r"([\w-]+)\s*=\s*"
    r"(?:\"([^\"\\]*(?:\\.[^\"\\]*)*)\"|'([^'\\]*(?:\\.[^'\\]*)*)'|([\w.-]+))"
)
# IncludeTag::VARIABLE_SYNTAX: a file name made with Liquid ({{ page.video }}.html).
_VARIABLE = re.compile(
    r"(?P<variable>[^{]*(\{\{\s*[\w\-.]+\s*(\|.*)?\}\}[^\s{}]*)+)(?P<params>.*)", re.S
)
_VALID_NAME = re.compile(r"^[\w/.\-()+~#@]+$")
_INVALID_SEQUENCE = re.compile(r"[./]{2,}")
_INDEX = re.compile(r"\[(\d+)\]")


class IncludeNode(Node):
    """One `{% include file params %}`: rendered when the excerpt is."""

    __slots__ = ("file", "params", "tag")

    def __init__(self, token: Token, tag: str, markup: str) -> None:
        super().__init__(token)
        self.tag = tag
        self.blank = False
        markup = markup.strip()
        matched = _VARIABLE.fullmatch(markup)
        if matched:
            self.file, self.params = matched["variable"].strip(), matched["params"].strip()
        else:
            parts = markup.split(None, 1)
            self.file = parts[0] if parts else ""
            self.params = parts[1] if len(parts) > 1 else ""

    def __str__(self) -> str:
        return f"{{% {self.tag} {self.file} {self.params} %}}"

    def render_to_output(self, context: RenderContext, buffer: TextIO) -> int:
        env: Any = context.env
        name = self.file
        if "{{" in name:
            rendered = StringIO()
            env.from_string(name).render_with_context(context, rendered, partial=True)
            name = rendered.getvalue().strip()
        if not name or _INVALID_SEQUENCE.search(name) or not _VALID_NAME.match(name):
            raise LiquidError(f"{self.tag}: invalid file name {name!r}", token=self.token)
        page = context.resolve("page", default={})
        path = env.include_file(self.tag, name, page)
        if path is None:
            raise LiquidError(f"{self.tag}: no file {name!r}", token=self.token)
        try:
            template = env.parse_include(path)
        except OSError as exc:
            raise LiquidError(f"{self.tag}: cannot read {name!r}", token=self.token) from exc
        namespace: dict[str, object] = {}
        if self.params:
            namespace["include"] = _params(self.params, context)
        with context.extend(namespace, template=template):
            if path.suffix.lower() not in (".html", ".htm"):
                template.render_with_context(context, buffer, partial=True)
                return 1
            output = StringIO()
            template.render_with_context(context, output, partial=True)
        # kramdown reads an HTML block whole, its indented lines and the blank lines a
        # Liquid tag leaves too; CommonMark would make those code or end the block.
        lines = (line.strip() for line in output.getvalue().splitlines())
        buffer.write("\n".join(line for line in lines if line))
        # kramdown's HTML block ends at its closing tag, CommonMark's at a blank line: what
        # follows the include on the next line (a link definition) must not join the block.
        buffer.write("\n")
        return 1

    def children(
        self, static_context: RenderContext, *, include_partials: bool = True
    ) -> Iterable[Node]:
        return ()


def _params(markup: str, context: RenderContext) -> dict[str, object]:
    """Jekyll's parse_params: quoted values as written, a bare value looked up."""
    values: dict[str, object] = {}
    for match in _PARAM.finditer(markup):
        if match.group(2) is not None:
            values[match.group(1)] = match.group(2).replace('\\"', '"')
        elif match.group(3) is not None:
            values[match.group(1)] = match.group(3).replace("\\'", "'")
        else:
            values[match.group(1)] = _lookup(context, match.group(4))
    return values


def _lookup(context: RenderContext, name: str) -> object:
    path: list[object] = []
    for part in name.split("."):
        head, _bracket, _rest = part.partition("[")
        if head:
            path.append(head)
        path.extend(int(i) for i in _INDEX.findall(part))
    if not path:
        return None
    return context.get(path, token=None, default=None)


class IncludeTag(Tag):
    """Jekyll's `include`: a file of the site's `_includes`."""

    name = "include"
    block = False

    def parse(self, stream: TokenStream) -> Node:
        token = stream.current
        markup = ""
        if stream.peek.kind == TOKEN_EXPRESSION:
            next(stream)
            markup = stream.current.value
        return IncludeNode(token, self.name, markup)


class IncludeRelativeTag(IncludeTag):
    """Jekyll's `include_relative`: a file beside the post."""

    name = "include_relative"


def include_path(
    tag: str, name: str, *, includes_dir: Path, site_root: Path, page: Any
) -> Path | None:
    """Where an include's file is: `_includes/NAME`, or beside the post for include_relative;
    None if there is no such file inside the site."""
    if tag == "include_relative":
        page_path = page.get("path") if hasattr(page, "get") else None
        if not isinstance(page_path, str):
            return None
        base = (site_root / page_path).parent
        limit = site_root
    else:
        base = limit = includes_dir
    candidate = (base / name).resolve()
    try:
        candidate.relative_to(limit.resolve())
    except ValueError:
        return None
    return candidate if candidate.is_file() else None
