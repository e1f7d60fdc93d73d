"""Which files of a Jekyll site are candidate posts: every `_posts` folder Jekyll reads, and drafts.

config ─► posts (post_files): the walk over the site, with Jekyll's exclude and special names.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple

from digest.errors import ConfigError
from digest.sources.jekyll.site import JekyllSite

log = logging.getLogger(__name__)

# Jekyll's Document::DATE_FILENAME_MATCHER (without the leading folders).
DATE_FILENAME = re.compile(r"^(\d{2,4}-\d{1,2}-\d{1,2})-([^/]*)(\.[^.]+)$")
# Jekyll's Document::DATELESS_FILENAME_MATCHER, used for _drafts.
DATELESS_FILENAME = re.compile(r"^([^/]+)(\.[^.]+)$")
# Folders Jekyll never reads posts from (its EntryFilter and default `exclude`).
_SKIP_DIRS = {"node_modules", "vendor", "gemfiles"}


class SourceFile(NamedTuple):
    """A candidate post file: where it is, its path from the site root, what its folders say."""

    path: str  # as found below `posts_dir` (absolute only if `posts_dir` is)
    relative: str  # from the site root with `/` (Jekyll's `page.path`); `path` if outside it
    name: str
    categories: tuple[str, ...]
    draft: bool
    file: Path | None = None  # `path` as a Path, when the walk made one (None: made from it)


def source_files(posts_dir: Path, jekyll: JekyllSite, include_drafts: bool) -> Iterator[SourceFile]:
    """Every candidate post file, with the categories from the folders above it.

    `posts_dir` at the site root (`<root>/_posts`) means the whole site, as Jekyll reads it:
    every `_posts` folder below the root too. A `_posts` deeper down (`en/news/_posts`) means
    that folder only.
    """
    root = jekyll.root
    source = jekyll.source
    try:
        if not posts_dir.is_dir():
            raise ConfigError(f"site.posts_dir: folder {posts_dir} does not exist")
        os.listdir(posts_dir)
    except OSError as exc:
        raise ConfigError(
            f"site.posts_dir: cannot read folder {posts_dir}: {exc.strerror or exc}"
        ) from exc

    whole_site = posts_dir.absolute() == (source / "_posts").absolute()
    folders: list[tuple[Path, bool]] = [(posts_dir, False)]
    if include_drafts:
        folders.append((posts_dir.parent / "_drafts", True))
    if whole_site:
        for special, is_draft in _special_folders(source, jekyll):
            if include_drafts or not is_draft:
                folders.append((special, is_draft))

    seen: set[Path] = set()
    for folder, is_draft in folders:
        if folder.absolute() in seen or not folder.is_dir():
            continue
        seen.add(folder.absolute())
        categories = _folder_categories(source, folder)
        matcher = DATELESS_FILENAME if is_draft else DATE_FILENAME
        for path, relative, name, file in _files_under(folder, root, jekyll):
            if not matcher.match(name):
                log.debug("not a post (name does not match Jekyll's pattern): %s", path)
                continue
            yield SourceFile(path, relative, name, categories, is_draft, file)


def _relative(root: Path, path: Path) -> str:
    base = str(root.absolute()) + os.sep
    text = str(path.absolute())
    relative = text[len(base) :] if text.startswith(base) else text
    return relative.replace(os.sep, "/")


def _special_folders(root: Path, jekyll: JekyllSite) -> Iterator[tuple[Path, bool]]:
    """Every `_posts` / `_drafts` folder under the site root Jekyll would read."""
    for current, dirnames, _files in os.walk(root):
        keep = []
        for name in sorted(dirnames):
            path = Path(current) / name
            if name in ("_posts", "_drafts"):
                yield path, name == "_drafts"
            elif (
                not name.startswith((".", "_", "#"))
                and name not in _SKIP_DIRS
                and not jekyll.excluded(_relative(root, path))
            ):
                keep.append(name)
        dirnames[:] = keep


def _files_under(
    folder: Path, root: Path, jekyll: JekyllSite
) -> Iterator[tuple[str, str, str, Path | None]]:
    """(path, path from the root, name, path as a Path) of the files in a `_posts` folder and
    its subfolders, minus Jekyll's special and excluded files. Paths are what pathlib gives,
    made once a folder: per file, parsing a path costs a tenth of reading the post. The
    folder's `iterdir` makes each file's Path without parsing it again."""
    check_exclude = jekyll.may_exclude_under(_relative(root, folder))
    base = str(root.absolute()) + os.sep
    for current, dirnames, filenames in os.walk(folder):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith((".", "_", "#")))
        here = Path(current)
        shown = str(here)
        # Each file's texts are these folder prefixes and its name (never a separator in it).
        lead = os.path.join("" if shown == "." else shown, "")
        absolute = os.path.join(str(here.absolute()), "")
        inside = absolute.startswith(base)
        from_root = (absolute[len(base) :] if inside else absolute).replace(os.sep, "/")
        # Outside the site root a post is known by its path as found (Jekyll's page.path).
        known_as = from_root if inside else lead.replace(os.sep, "/")
        try:
            files = {child.name: child for child in here.iterdir()}
        except OSError:  # gone since the walk listed it: each Path is made from its text
            files = {}
        for name in sorted(filenames):
            if name.startswith((".", "_", "#")) or name.endswith("~"):
                continue
            path = lead + name
            if check_exclude and jekyll.excluded(from_root + name):
                log.debug("not a post (excluded in _config.yml): %s", path)
                continue
            yield path, known_as + name, name, files.get(name)


def _folder_categories(root: Path, folder: Path) -> tuple[str, ...]:
    """Jekyll's categories from the folders between the site root and `_posts`."""
    try:
        parts = folder.absolute().parent.relative_to(root.absolute()).parts
    except ValueError:
        return ()
    return tuple(p for p in parts if p not in ("", ".", "_posts", "_drafts"))
