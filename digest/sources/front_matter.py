"""A post's front matter: split from its body by python-frontmatter, read by the bounded
loaders of sources.guards, its values read as the author wrote them.

sources (jekyll, hugo) ─► front_matter: Jekyll's YAML (`---`), Hugo's YAML, TOML (`+++`) and
JSON (`{`), each a python-frontmatter handler with that generator's fences whose load() is a
guards loader; text, names and authors out of them, errors naming the key.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from datetime import date
from typing import Any

import frontmatter
import yaml
from frontmatter.default_handlers import BaseHandler, JSONHandler, YAMLHandler

from digest.errors import PostError
from digest.sources.guards import LimitError, json_value_end, load_json, load_toml, load_yaml

# UTF-8 read as cp1252/latin-1 leaves one of these lead characters before a byte-range one.
_MOJIBAKE_HINT = re.compile(
    "[\u00c2-\u00c5\u00ce\u00cf\u00d0\u00d1\u00e2\u00ef][\u0080-\u00bf\u0152\u0153\u0160\u0161\u0178\u017d\u017e\u0192\u02c6\u02dc\u2013-\u203a\u20ac\u2122]"
)
_SAFE_LOADER: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
# A top-level `key: value` line whose value needs no YAML beyond plain, quoted or [a, b].
# (The value keeps its trailing blanks: a lazy `(.*?)[ \t]*$` cost a step per character.)
_SIMPLE_LINE = re.compile(r"([A-Za-z_][A-Za-z0-9_-]*):(?:[ \t]+(.*))?$")
_INDICATORS = frozenset("-?:,[]{}#&*!|>'\"%@`")
# What YAML resolves a plain scalar to (bool, int, float, timestamp, null): a regex a first char.
_RESOLVED = {
    first: re.compile("|".join(f"(?:{pattern.pattern})" for _tag, pattern in resolvers), re.X)
    for first, resolvers in yaml.resolver.Resolver.yaml_implicit_resolvers.items()
}
_FLOW_INDICATOR = re.compile(r"[\[\]{}]")
# yaml.v2 (Hugo's) takes a tab between a value and its comment; PyYAML does not.
_INNER_TAB = re.compile(r"(?<=\S)\t+")


def repair_text(value: str) -> str:
    """`value` with mojibake repaired and everything else the author wrote kept."""
    # ftfy is slow; only text that shows a mojibake pattern goes through it.
    if not value or value.isascii() or not _MOJIBAKE_HINT.search(value):
        return value
    import ftfy  # ~0.1 s to import: only when some text needs it

    repair = ftfy.TextFixerConfig(
        # Repair mojibake only: keep the author's quotes, ligatures, widths and HTML entities.
        unescape_html=False,
        uncurl_quotes=False,
        fix_latin_ligatures=False,
        fix_character_width=False,
        explain=False,
    )
    return str(ftfy.fix_text(value, config=repair))


class RawScalars:
    """The source text of YAML scalars, for values YAML turned into bool/int (`title: yes`)."""

    def __init__(self, front: str | None, node: yaml.Node | None = None) -> None:
        self._front = front
        self._node = node
        self._nodes: dict[str, yaml.Node] | None = None

    def _load(self) -> dict[str, yaml.Node]:
        if self._nodes is None:
            self._nodes = {}
            node = self._node
            if node is None and self._front:
                node = yaml.compose(self._front, Loader=_SAFE_LOADER)
            if isinstance(node, yaml.MappingNode):
                for key, value in node.value:
                    if isinstance(key, yaml.ScalarNode):
                        self._nodes[str(key.value)] = value
        return self._nodes

    def get(self, key: str, index: int | None = None) -> str | None:
        """The source text of `key` (or of item `index` of its list); None if not a scalar."""
        node = self._load().get(key)
        if index is not None and isinstance(node, yaml.SequenceNode):
            node = node.value[index] if index < len(node.value) else None
        if isinstance(node, yaml.ScalarNode):
            return str(node.value)
        return None


@dataclass(frozen=True)
class FrontMatter:
    """The keys and values above a post's body, the body, and where they came from."""

    meta: dict[str, Any]
    body: str
    raw: RawScalars
    where: str

    def text(self, key: str) -> str:
        """A scalar as text, stripped; "" when absent; PostError for a list or mapping."""
        value = self.meta.get(key)
        if value is None:
            return ""
        if isinstance(value, str):
            return value.strip()
        text = _scalar_text(value, self.raw.get(key))
        if text is None:
            raise PostError(self.where, f"{key} must be text, not {type(value).__name__} {value!r}")
        return text.strip()

    def names(self, key: str, *, split: bool) -> list[str]:
        """Category or tag names: a YAML list, or a string split on whitespace (if `split`)."""
        value = self.meta.get(key)
        if value is None:
            return []
        if isinstance(value, list):
            names = []
            for i, item in enumerate(value):
                if item is None:
                    continue
                text = item if isinstance(item, str) else _scalar_text(item, self.raw.get(key, i))
                if text is None:
                    raise PostError(self.where, f"{key} must be a list of names, not {item!r}")
                names.append(text.strip())
            return [n for n in names if n]
        text = value if isinstance(value, str) else _scalar_text(value, self.raw.get(key))
        if text is None:
            raise PostError(self.where, f"{key} must be a name or a list of names, not {value!r}")
        if split:
            return text.split()
        return [text.strip()] if text.strip() else []

    def author(self) -> str | None:
        """The author's name: text, a list joined with commas, or a mapping's `name`."""
        value = self.meta.get("author")
        if value is None:
            return None
        if isinstance(value, dict):
            value = value.get("name")
            if value is None:
                return None
        if isinstance(value, list):
            parts = [_scalar_text(v, self.raw.get("author", i)) for i, v in enumerate(value)]
            text = ", ".join(p.strip() for p in parts if p and p.strip())
        else:
            scalar = (
                value if isinstance(value, str) else _scalar_text(value, self.raw.get("author"))
            )
            if scalar is None:
                raise PostError(self.where, f"author must be text, not {value!r}")
            text = scalar
        text = " ".join(repair_text(text).split())
        return text or None


# ---------------------------------------------------------------------------------------------
# python-frontmatter's handlers, with Jekyll's and Hugo's fences and the bounded loaders


class JekyllYamlHandler(YAMLHandler):
    """Jekyll's Document::YAML_FRONT_MATTER_REGEXP: a `---` line opens the file, the first
    `---` or `...` line after it closes."""

    FM_BOUNDARY = re.compile(r"^(?:---|\.\.\.)[ \t\r\f\v]*$\n?", re.M)
    _OPENING = re.compile(r"---[ \t\r\f\v]*\n")

    def detect(self, text: str) -> bool:
        return self._OPENING.match(text) is not None

    def load(self, fm: str, **kwargs: object) -> Any:
        simple = simple_front_matter(fm)
        if simple is not None:
            return simple
        # The opening line goes back on: a line YAML reports is then the file's line.
        data = load_yaml("---\n" + fm)
        if isinstance(data, dict) and not all(type(key) is str for key in data):
            data = {str(k): v for k, v in data.items()}  # keys as text: `2024: x` is "2024"
        return data


class _NotClosed(ValueError):
    """Fenced front matter without its closing line."""


class _HugoFenced(BaseHandler):
    """Hugo's fenced front matter, as its lexer reads it: an opening line starts the text
    (spaces before it gone); the first line after it that starts with the delimiter closes it
    (a longer dash line too: the dashes after the third are the body's)."""

    FENCE = ""
    _OPENING: re.Pattern[str]
    FM_BOUNDARY: re.Pattern[str]  # the opening line, then a closing delimiter

    def detect(self, text: str) -> bool:
        return text.startswith(self.FENCE)

    def split(self, text: str) -> tuple[str, str]:
        if not self._OPENING.match(text):  # `---x`: no opening line, so never closed
            raise _NotClosed
        try:
            fm, content = super().split(text)
        except ValueError:  # no closing line: two parts where three were unpacked
            raise _NotClosed from None
        return str(fm), str(content)


class HugoYamlHandler(_HugoFenced, YAMLHandler):
    """YAML between `---` lines, read as Hugo 0.111's yaml.v2 does: dates stay text."""

    FENCE = "---"
    _OPENING = re.compile(r"---[ \t]*\n")
    FM_BOUNDARY = re.compile(r"\A---[ \t]*\n|^---\n?", re.M)

    def load(self, fm: str, **kwargs: object) -> Any:
        try:
            return load_yaml(fm, dates=False)
        except yaml.YAMLError as exc:
            first_error = exc
        try:  # yaml.v2 takes a tab between a value and its comment
            return load_yaml(_INNER_TAB.sub(" ", fm), dates=False)
        except yaml.YAMLError:
            raise first_error from None


class HugoTomlHandler(_HugoFenced):
    """TOML between `+++` lines (python-frontmatter's TOMLHandler wants the toml package)."""

    FENCE = "+++"
    _OPENING = re.compile(r"\+\+\+[ \t]*\n")
    FM_BOUNDARY = re.compile(r"\A\+\+\+[ \t]*\n|^\+\+\+\n?", re.M)
    START_DELIMITER = END_DELIMITER = "+++"

    def load(self, fm: str, **kwargs: object) -> Any:
        return load_toml(fm)


class HugoJsonHandler(JSONHandler):
    """A JSON object at the start of the file, however its braces are laid out (Hugo's)."""

    def detect(self, text: str) -> bool:
        return text.startswith("{")

    def split(self, text: str) -> tuple[str, str]:
        end = json_value_end(text, 0)
        if end is None:  # not closed: json.loads says where it breaks
            return text, ""
        return text[:end], text[end:]

    def load(self, fm: str, **kwargs: object) -> Any:
        return load_json(fm)


JEKYLL_HANDLERS = (JekyllYamlHandler(),)
HUGO_HANDLERS = (HugoYamlHandler(), HugoTomlHandler(), HugoJsonHandler())
_HUGO_KINDS = {
    HugoYamlHandler: ("YAML", "---"),
    HugoTomlHandler: ("TOML", "+++"),
    HugoJsonHandler: ("JSON", "}"),
}


class FrontMatterError(ValueError):
    """Hugo front matter that cannot be read; the message says why."""


def split_jekyll_front_matter(text: str, where: str) -> FrontMatter | None:
    """Jekyll's front matter (YAML between `---` and `---` or `...`) and the body after it;
    None when the text has none, or it is not closed. PostError when it cannot be read."""
    handler = frontmatter.detect_format(text, JEKYLL_HANDLERS)
    if handler is None:
        return None
    try:
        fm, body = handler.split(text)
    except ValueError:
        return None
    try:
        data = handler.load(fm)
    except LimitError as exc:
        raise PostError(where, f"front matter refused: {exc}") from None
    except yaml.YAMLError as exc:
        raise PostError(where, f"front matter is not valid YAML: {_yaml_problem(exc)}") from exc
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise PostError(where, "front matter must be keys and values (title: ..., date: ...)")
    return FrontMatter(meta=data, body=body, raw=RawScalars(fm), where=where)


def split_hugo_front_matter(text: str) -> tuple[dict[str, Any], str] | None:
    """Hugo's front matter (YAML, TOML or JSON) and the body after it; None when the text
    has none. FrontMatterError when it is not closed, cannot be read or is refused."""
    handler = frontmatter.detect_format(text, HUGO_HANDLERS)
    if handler is None:
        return None
    kind, fence = _HUGO_KINDS[type(handler)]
    try:
        fm, body = handler.split(text)
        data = handler.load(fm)
    except LimitError as exc:  # before ValueError, which it is
        raise FrontMatterError(f"front matter refused: {exc}") from None
    except yaml.YAMLError as exc:
        reason = str(exc).splitlines()[0]
        raise FrontMatterError(f"{kind} front matter: {reason}") from exc
    except _NotClosed:
        raise FrontMatterError(f"front matter is not closed (no closing {fence} line)") from None
    except ValueError as exc:  # tomllib.TOMLDecodeError and json.JSONDecodeError are
        raise FrontMatterError(f"{kind} front matter: {exc}") from exc
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise FrontMatterError("front matter must be keys and values")
    return data, str(body)


def simple_front_matter(front: str) -> dict[str, Any] | None:
    """Flat `key: text` / `key: [a, b]` front matter read without YAML; None if it is more.

    Most posts' front matter is only that, and reading it here is what keeps 5,000 posts
    under a second. Every value this accepts reads the same under YAML: anything YAML would
    turn into a bool, number, date or null, and any YAML syntax beyond this, goes to YAML.
    """
    data: dict[str, Any] = {}
    for line in front.split("\n"):
        if not line or line[0] == "#":
            continue
        entry = _simple_entry(line)
        if entry is None:
            return None
        key, value = entry
        data[key] = list(value) if type(value) is tuple else value  # each post its own list
    return data


@functools.lru_cache(maxsize=256)
def _simple_entry(line: str) -> tuple[str, str | tuple[str, ...] | None] | None:
    """One `key: value` line (a list's items as a tuple, which the cache may keep), or None
    when YAML must read it. Cached: `layout: post`, `author: ...`, the same categories and
    tags come back in most posts of a site."""
    match = _SIMPLE_LINE.match(line)
    if match is None:
        return None
    key, value = match.groups()
    if not _plain_text(key):
        return None
    if value:
        value = value.rstrip(" \t")
    if not value:
        return key, None
    if value[0] == "[":
        items = _flow_items(value)
        return None if items is None else (key, tuple(items))
    if value[0] in "\"'":
        if len(value) < 2 or value[-1] != value[0] or value[0] in value[1:-1] or "\\" in value:
            return None
        return key, value[1:-1]
    return (key, value) if _plain_text(value) else None


def _flow_items(value: str) -> list[str] | None:
    """The items of a one-line `[a, b]` of plain words, or None if YAML must read it."""
    if value[-1] != "]" or _FLOW_INDICATOR.search(value, 1, len(value) - 1):
        return None
    items = [item.strip() for item in value[1:-1].split(",")]
    for item in items:
        if not _plain_text(item):
            return None  # `[]`, `[a,]` and `[a, yes]` too: YAML reads them
    return items


def _plain_text(value: str) -> bool:
    """Whether `value` is a plain YAML scalar that YAML reads as this very text."""
    if not value:
        return False
    first = value[0]
    if first in _INDICATORS or ": " in value or " #" in value or "\t#" in value:
        return False
    if value[-1] == ":":
        return False
    resolved = _RESOLVED.get(first)
    if resolved is None or (len(value) > 5 and first.isalpha()):
        return True  # YAML's words (yes, off, null, false...) are at most five letters
    return resolved.match(value) is None


def _yaml_problem(exc: yaml.YAMLError) -> str:
    mark = getattr(exc, "problem_mark", None)
    problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
    # The mark counts from the front matter's first line; the file has the opening --- above it.
    return f"{problem} (front matter line {mark.line + 1})" if mark else str(problem)


def _scalar_text(value: object, raw: str | None) -> str | None:
    """A scalar as the author wrote it; None for lists and mappings."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool | int | float | date):
        return raw if raw is not None else str(value)
    return None
