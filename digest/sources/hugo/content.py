"""Find a Hugo site's content files: which are pages, in which language, which are bundles.

sources.hugo reads each file found here; the rules are Hugo 0.111's (content comes from the
mounts in order, the first file at a path wins; leaf bundles own every file below them; `_index`
files are list pages whose `cascade` passes front matter down; ignoreFiles and dot files are
skipped; a file in a disabled language is no page).
"""

from __future__ import annotations

import fnmatch
import os
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from digest.sources.hugo.config import HugoConfig, HugoLanguage
from digest.sources.hugo.mounts import ContentMount

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

# Reads an `_index` file's front matter (None when it cannot be read).
FrontReader = Callable[[Path], "Mapping[str, Any] | None"]


@dataclass(frozen=True)
class ContentSource:
    """One content file and what its place in the tree says about it."""

    file: Path
    content_dir: Path
    language: HugoLanguage
    bundle: str  # "leaf" for a bundle's index file, else ""
    directory: str = ""  # its folder under content/ ("posts/2024"), bundle folder included
    cascade: Mapping[str, Any] = field(default_factory=dict)
    in_draft_section: bool = False  # below an `_index` marked draft: not built by default


def content_sources(
    config: HugoConfig, read_front: FrontReader | None = None
) -> Iterator[ContentSource]:
    """Every content file that can be a regular page, with its language and bundle role."""
    by_code = {lang.code: lang for lang in config.languages}
    default = by_code.get(config.default_language, config.languages[0])
    seen: set[tuple[str, str]] = set()
    cascades: dict[tuple[str, str], Mapping[str, Any]] = {}
    drafts: set[tuple[str, str]] = set()
    for mount in config.content_mounts:
        owner = by_code.get(mount.lang) if mount.lang else None
        for file, directory, bundle in _walk(config, mount):
            named = _file_language(file, by_code, config.disabled_languages)
            if named is False:
                continue  # a language the site does not build
            language = named if isinstance(named, HugoLanguage) else owner or default
            name = _without_language(file.name, by_code, config.disabled_languages)
            virtual = f"{directory}/{name}" if directory else name
            if (virtual, language.code) in seen:
                continue  # a file at the same place in an earlier mount wins
            seen.add((virtual, language.code))
            if file.name.split(".")[0] == "_index":
                if read_front is not None:
                    front = read_front(file) or {}
                    _remember_cascade(cascades, directory, language.code, front)
                    if front.get("draft") is True:
                        drafts.add((directory, language.code))
                continue
            folder = directory.rpartition("/")[0] if bundle else directory
            yield ContentSource(
                file,
                mount.source,
                language,
                bundle,
                directory,
                _cascade_for(cascades, folder, language.code, virtual),
                bool(drafts) and _below(drafts, folder, language.code),
            )


def _file_language(
    file: Path, by_code: Mapping[str, HugoLanguage], disabled: frozenset[str]
) -> HugoLanguage | bool | None:
    """The language a file name says (`about.fr.md`), False for a disabled one, else None."""
    parts = file.name.split(".")
    if len(parts) >= 3:
        code = parts[-2].lower()
        if code in by_code:
            return by_code[code]
        if code in disabled:
            return False
    return None


def _walk(config: HugoConfig, mount: ContentMount) -> Iterator[tuple[Path, str, str]]:
    """(file, its folder under content/, "leaf" or "") for each content file of a mount;
    `_index` files come first in their folder so their cascade is known below them."""
    folder = mount.source
    if not folder.is_dir():
        return  # Hugo skips a mount whose source is absent
    for current, dirnames, filenames in os.walk(folder):
        here = Path(current)
        relative = here.relative_to(folder).as_posix()
        relative = "" if relative == "." else relative
        dirnames[:] = sorted(
            d
            for d in dirnames
            if not _ignored(config, here / d)
            and mount.admits(f"{relative}/{d}" if relative else d, is_dir=True)
        )
        names = [
            n
            for n in sorted(filenames)
            if _is_content(n)
            and not _ignored(config, here / n)
            and mount.admits(f"{relative}/{n}" if relative else n, is_dir=False)
        ]
        directory = "/".join(p for p in (mount.target, relative) if p)
        indexes = [n for n in names if n.split(".")[0] == "index"]
        if indexes and here != folder:
            dirnames[:] = []  # a leaf bundle: everything below it is a resource, not a page
            for name in indexes:
                yield here / name, directory, "leaf"
            continue
        names.sort(key=lambda n: n.split(".")[0] != "_index")
        for name in names:
            yield here / name, directory, ""


def _without_language(name: str, by_code: Mapping[str, Any], disabled: frozenset[str]) -> str:
    """`index.fr.md` -> `index.md`: a page's place, whatever its language."""
    parts = name.split(".")
    if len(parts) >= 3 and (parts[-2].lower() in by_code or parts[-2].lower() in disabled):
        return ".".join([*parts[:-2], parts[-1]])
    return name


def _below(marked: set[tuple[str, str]], folder: str, lang: str) -> bool:
    parts = folder.split("/") if folder else []
    return any(("/".join(parts[:depth]), lang) in marked for depth in range(len(parts) + 1))


def _remember_cascade(
    cascades: dict[tuple[str, str], Mapping[str, Any]],
    directory: str,
    lang: str,
    front: Mapping[str, Any],
) -> None:
    value = front.get("cascade")
    if isinstance(value, Mapping):
        cascades[(directory, lang)] = {str(k).lower(): v for k, v in value.items()}
    elif isinstance(value, list):  # entries with a `_target`: kept with their target
        merged: dict[str, Any] = {}
        for entry in value:
            if isinstance(entry, Mapping):
                merged.setdefault("\0targets", []).append(
                    {str(k).lower(): v for k, v in entry.items()}
                )
        cascades[(directory, lang)] = merged


def _cascade_for(
    cascades: Mapping[tuple[str, str], Mapping[str, Any]], folder: str, lang: str, virtual: str
) -> Mapping[str, Any]:
    """The cascade values a page gets: the nearest section's first, then its parents'."""
    if not cascades:
        return {}
    found: dict[str, Any] = {}
    parts = folder.split("/") if folder else []
    for depth in range(len(parts), -1, -1):
        values = cascades.get(("/".join(parts[:depth]), lang))
        if not values:
            continue
        for entry in values.get("\0targets", [values]):
            if "_target" in entry and not _targets(entry["_target"], lang, virtual):
                continue
            for key, value in entry.items():
                if key not in ("_target", "\0targets"):
                    found.setdefault(key, value)
    return found


def _targets(target: object, lang: str, virtual: str) -> bool:
    if not isinstance(target, Mapping):
        return True
    path = target.get("path")
    if isinstance(path, str) and path and not fnmatch.fnmatch("/" + virtual, path):
        return False
    wanted = target.get("lang")
    return not (isinstance(wanted, str) and wanted and wanted.lower() != lang)


def _is_content(name: str) -> bool:
    return os.path.splitext(name)[1].lower() in CONTENT_EXTS


def _ignored(config: HugoConfig, path: Path) -> bool:
    name = path.name
    if name.startswith((".", "#")) or name.endswith("~"):
        return True
    text = path.as_posix()
    return any(pattern.search(text) for pattern in config.ignore_files)
