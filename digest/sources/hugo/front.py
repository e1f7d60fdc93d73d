"""Hugo front matter (YAML, TOML, JSON), split and read as Hugo 0.111's page parser does.

sources.hugo splits each content file here (its dates are read in sources.hugo.dates).
"""

from __future__ import annotations

import json
import re
import tomllib
from dataclasses import dataclass
from typing import Any

import yaml

from digest.sources.hugo.config import lower_keys

SUMMARY_DIVIDER = "<!--more-->"
_BOM = "\ufeff"
_INNER_TAB = re.compile(r"(?<=\S)\t+")
# Hugo's lexer closes front matter at the first line that starts with the delimiter: a longer
# dash line (`----------`) closes it too, the dashes after the third are the body's.
_YAML_FENCE = re.compile(r"^---[ \t]*\n(.*?\n)?---\n?", re.DOTALL)
_TOML_FENCE = re.compile(r"^\+\+\+[ \t]*\n(.*?\n)?\+\+\+\n?", re.DOTALL)


class FrontMatterError(ValueError):
    """Front matter that cannot be read; the message says why."""


class _HugoYamlLoader(yaml.SafeLoader):
    """YAML as Hugo 0.111 (yaml.v2) reads it into params: timestamps stay text."""


_HugoYamlLoader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


@dataclass(frozen=True)
class ContentFile:
    """A content file split into its front matter (keys lower-cased) and its body."""

    front: dict[str, Any]
    body: str
    has_front_matter: bool


def split_content(text: str) -> ContentFile:
    """Front matter and body of a content file; FrontMatterError when it is malformed."""
    text = text.removeprefix(_BOM).replace("\r\n", "\n")
    start = text.lstrip()
    data: Any
    if start.startswith("---"):
        match = _YAML_FENCE.match(start)
        if match is None:
            raise FrontMatterError("front matter is not closed (no closing --- line)")
        data = _load_yaml(match.group(1) or "")
    elif start.startswith("+++"):
        match = _TOML_FENCE.match(start)
        if match is None:
            raise FrontMatterError("front matter is not closed (no closing +++ line)")
        try:
            data = tomllib.loads(match.group(1) or "")
        except tomllib.TOMLDecodeError as exc:
            raise FrontMatterError(f"TOML front matter: {exc}") from exc
    elif start.startswith("{"):
        try:
            data, end = json.JSONDecoder().raw_decode(start)
        except json.JSONDecodeError as exc:
            raise FrontMatterError(f"JSON front matter: {exc}") from exc
        return _content(data, start[end:])
    else:
        return ContentFile({}, text, has_front_matter=False)
    return _content(data, start[match.end() :])


def _load_yaml(text: str) -> Any:
    try:
        return yaml.load(text, Loader=_HugoYamlLoader)
    except yaml.YAMLError as exc:
        first_error = exc
    # yaml.v2 (Hugo's) takes a tab between a value and its comment; PyYAML does not.
    try:
        return yaml.load(_INNER_TAB.sub(" ", text), Loader=_HugoYamlLoader)
    except yaml.YAMLError:
        reason = str(first_error).splitlines()[0]
        raise FrontMatterError(f"YAML front matter: {reason}") from first_error


def _content(data: Any, body: str) -> ContentFile:
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise FrontMatterError("front matter must be keys and values")
    return ContentFile(lower_keys(data), body, has_front_matter=True)
