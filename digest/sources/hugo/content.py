"""Find a Hugo site's content files: which are pages, in which language, which are bundles.

sources.hugo reads each file found here; the rules are Hugo 0.111's (leaf bundles own every
file below them, `_index` files are list pages, ignoreFiles and dot files are skipped).
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

from digest.sources.hugo.config import HugoConfig, HugoLanguage

# Hugo's content formats (markdown, html, asciidoc, pandoc, org, rst) by file extension.
CONTENT_EXTS = frozenset(
    [
        ".md",
        ".markdown",
        ".mdown",
        ".html",
        ".htm",
        ".adoc",
        ".asciidoc",
        ".ad",
        ".pandoc",
        ".pdc",
        ".org",
        ".rst",
    ]
)


@dataclass(frozen=True)
class ContentSource:
    """One content file and what its place in the tree says about it."""

    file: Path
    content_dir: Path
    language: HugoLanguage
    bundle: str  # "leaf" for a bundle's index file, else ""


def content_sources(config: HugoConfig) -> Iterator[ContentSource]:
    """Every content file that can be a regular page, with its language and bundle role."""
    own_dirs = {lang.content_dir for lang in config.languages if lang.own_content_dir}
    by_code = {lang.code: lang for lang in config.languages}
    default = by_code.get(config.default_language, config.languages[0])
    seen: set[Path] = set()
    for language in config.languages:
        folder = language.content_dir
        if folder in seen or (not language.own_content_dir and folder in own_dirs):
            continue
        seen.add(folder)
        owner = language if language.own_content_dir else None
        for file, bundle in _walk(config, folder, skip=own_dirs - {folder}):
            yield ContentSource(
                file, folder, owner or _file_language(file, by_code, default), bundle
            )


def _file_language(
    file: Path, by_code: Mapping[str, HugoLanguage], default: HugoLanguage
) -> HugoLanguage:
    parts = file.name.split(".")
    if len(parts) >= 3 and parts[-2].lower() in by_code:
        return by_code[parts[-2].lower()]
    return default


def _walk(config: HugoConfig, folder: Path, *, skip: set[Path]) -> Iterator[tuple[Path, str]]:
    if not folder.is_dir():
        return
    for current, dirnames, filenames in os.walk(folder):
        here = Path(current)
        dirnames[:] = sorted(
            d for d in dirnames if not _ignored(config, here / d) and here / d not in skip
        )
        names = [n for n in sorted(filenames) if not _ignored(config, here / n)]
        indexes = [n for n in names if _is_content(n) and n.split(".")[0] == "index"]
        if indexes and here != folder:
            dirnames[:] = []  # a leaf bundle: everything below it is a resource, not a page
            for name in indexes:
                yield here / name, "leaf"
            continue
        for name in names:
            if _is_content(name) and name.split(".")[0] != "_index":
                yield here / name, ""


def _is_content(name: str) -> bool:
    return os.path.splitext(name)[1].lower() in CONTENT_EXTS


def _ignored(config: HugoConfig, path: Path) -> bool:
    name = path.name
    if name.startswith((".", "#")) or name.endswith("~"):
        return True
    text = path.as_posix()
    return any(pattern.search(text) for pattern in config.ignore_files)
