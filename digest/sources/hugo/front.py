"""Hugo front matter (YAML, TOML, JSON), split and read as Hugo 0.111's page parser does.

sources.hugo splits each content file here, by sources.front_matter's python-frontmatter
handlers and the bounded loaders (its dates are read in sources.hugo.dates).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from digest.sources.front_matter import split_hugo_front_matter
from digest.sources.hugo.config import lower_keys

SUMMARY_DIVIDER = "<!--more-->"
_BOM = "\ufeff"


@dataclass(frozen=True)
class ContentFile:
    """A content file split into its front matter (keys lower-cased) and its body."""

    front: dict[str, Any]
    body: str
    has_front_matter: bool


def split_content(text: str) -> ContentFile:
    """Front matter and body of a content file; FrontMatterError when it is malformed."""
    text = text.removeprefix(_BOM).replace("\r\n", "\n")
    split = split_hugo_front_matter(text.lstrip())
    if split is None:
        return ContentFile({}, text, has_front_matter=False)
    data, body = split
    return ContentFile(lower_keys(data), body, has_front_matter=True)
