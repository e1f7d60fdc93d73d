"""Where a Hugo site's content comes from: module mounts, per-language contentDir, content/.

sources.hugo.config ─► mounts: the folders Hugo 0.111 reads pages from, each with the
language its files belong to and its includeFiles/excludeFiles filter (hugofs/glob rules).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

CONTENT = "content"


@dataclass(frozen=True)
class ContentMount:
    """One folder mounted into content/, with what Hugo knows of its files."""

    source: Path
    target: str  # the folder under content/ it becomes ("" for content/ itself)
    lang: str | None  # its files' language (None: the file name's, else the default)
    include: tuple[re.Pattern[str], ...] = ()
    include_dirs: tuple[re.Pattern[str], ...] = ()
    exclude: tuple[re.Pattern[str], ...] = ()

    def admits(self, relative: str, *, is_dir: bool) -> bool:
        """Hugo's FilenameFilter on a path relative to the source (`posts/a.md`): an
        includeFiles match, a folder on the way to one, else not an excludeFiles match."""
        if not (self.include or self.exclude):
            return True
        name = "/" + relative.lower()
        if any(p.fullmatch(name) for p in self.include):
            return True
        if is_dir and any(p.fullmatch(name) for p in self.include_dirs):
            return True
        if any(p.fullmatch(name) for p in self.exclude):
            return False
        return not self.include


def glob_pattern(glob: str) -> re.Pattern[str]:
    """A gobwas glob as Hugo compiles it (lower-cased, `/` separator): `*` stays within a
    folder, `**` crosses folders, `?` one character, `[...]` a class, `{a,b}` either."""
    out: list[str] = []
    index = 0
    depth = 0
    while index < len(glob):
        char = glob[index]
        if glob.startswith("**", index):
            out.append(".*")
            index += 2
            continue
        if char == "*":
            out.append("[^/]*")
        elif char == "?":
            out.append("[^/]")
        elif char == "[":
            end = glob.find("]", index + 1)
            if end == -1:
                out.append(re.escape(char))
            else:
                body = glob[index + 1 : end]
                negate = body.startswith("!")
                body = body[1:] if negate else body
                out.append("[" + ("^" if negate else "") + body.replace("\\", "\\\\") + "]")
                index = end
        elif char == "{":
            depth += 1
            out.append("(?:")
        elif char == "}" and depth:
            depth -= 1
            out.append(")")
        elif char == "," and depth:
            out.append("|")
        elif char == "\\" and index + 1 < len(glob):
            index += 1
            out.append(re.escape(glob[index]))
        else:
            out.append(re.escape(char))
        index += 1
    return re.compile("".join(out))


def _normalised(glob: str) -> str:
    glob = glob.replace("\\", "/").lower()
    return glob if glob.startswith("/") else "/" + glob


def _globs(value: object) -> list[str]:
    if isinstance(value, str):
        return [value] if value else []
    if isinstance(value, list):
        return [str(v) for v in value if isinstance(v, str | int) and str(v)]
    return []


def make_mount(
    root: Path, source: str, target: str, lang: str | None, entry: Mapping[str, Any]
) -> ContentMount:
    """A mount from its config entry (includeFiles/excludeFiles read as Hugo does)."""
    includes = [_normalised(g) for g in _globs(entry.get("includefiles"))]
    excludes = [_normalised(g) for g in _globs(entry.get("excludefiles"))]
    include_dirs: list[str] = []
    for glob in includes:
        # Every folder on the way to an included file is walked (hugofs.NewFilenameFilter).
        parts = glob.rsplit("/", 1)[0].split("/")
        include_dirs.extend(
            "/" + "/".join(p for p in parts[: i + 1] if p) for i in range(len(parts))
        )
    return ContentMount(
        source=root / source,
        target=target,
        lang=lang,
        include=tuple(glob_pattern(g) for g in includes),
        include_dirs=tuple(glob_pattern(g) for g in dict.fromkeys(include_dirs)),
        exclude=tuple(glob_pattern(g) for g in excludes),
    )


def _entries(module: Mapping[str, Any]) -> list[dict[str, Any]]:
    mounts = module.get("mounts")
    if isinstance(mounts, Mapping):
        mounts = [mounts]
    if not isinstance(mounts, list):
        return []
    return [{str(k).lower(): v for k, v in m.items()} for m in mounts if isinstance(m, Mapping)]


def _content_target(target: object) -> str | None:
    """The folder under content/ a mount target names, or None if it is not content."""
    parts = [p for p in str(target or "").replace("\\", "/").split("/") if p]
    if not parts or parts[0] != CONTENT:
        return None
    return "/".join(parts[1:])


def module_content_mounts(
    root: Path, module: Mapping[str, Any], enabled: Iterable[str]
) -> list[ContentMount] | None:
    """The content mounts a `[module]` table lists; None when it lists none (then Hugo mounts
    the languages' contentDir or content/). A mount for a disabled language is left out."""
    languages = set(enabled)
    found: list[ContentMount] = []
    any_content = False
    for entry in _entries(module):
        target = _content_target(entry.get("target"))
        if target is None:
            continue
        any_content = True
        lang = str(entry.get("lang") or "").lower() or None
        if lang is not None and lang not in languages:
            continue
        found.append(make_mount(root, str(entry.get("source") or ""), target, lang, entry))
    return found if any_content else None


def default_content_mounts(
    root: Path, content_dir: str, language_dirs: Sequence[tuple[str, str | None]]
) -> list[ContentMount]:
    """Hugo's mounts when the config names none: each language's own contentDir (languages
    in order, default first; a folder once), else the site's contentDir."""
    if not any(own for _code, own in language_dirs):
        return [ContentMount(root / content_dir, "", None)]
    seen: set[str] = set()
    mounts = []
    for code, own in language_dirs:
        folder = own or content_dir
        if folder in seen:
            continue
        seen.add(folder)
        mounts.append(ContentMount(root / folder, "", code))
    return mounts
