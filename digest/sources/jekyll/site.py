"""The Jekyll site around a posts folder: its root, `_config.yml`, front-matter defaults, `_data`.

config ─► jekyll_site ─► posts: what Jekyll reads besides the post file itself, read once per load.
"""

from __future__ import annotations

import csv
import functools
import io
import logging
import os
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from digest.errors import ConfigError
from digest.sources.guards import (
    MAX_FILE_BYTES,
    MAX_NESTING,
    load_json,
    load_yaml,
    read_regular_file,
)

if TYPE_CHECKING:
    from digest.settings import SiteSettings

log = logging.getLogger(__name__)

CONFIG_FILES = ("_config.yml", "_config.yaml")
# Jekyll 4's Configuration::DEFAULT_EXCLUDES, always added to the site's own `exclude`.
DEFAULT_EXCLUDES = (
    ".sass-cache", ".jekyll-cache", "gemfiles", "Gemfile", "Gemfile.lock", "node_modules",
    "vendor/bundle/", "vendor/cache/", "vendor/gems/", "vendor/ruby/",
)  # fmt: skip
# Keys of a Jekyll _config.yml that fill in `site` keys the digest config leaves out.
_SITE_KEYS = ("title", "url", "baseurl", "timezone", "permalink", "excerpt_separator", "lang")
_LEGACY_TYPES = {"post": "posts", "page": "pages", "draft": "drafts"}


def find_site_root(posts_dir: Path) -> Path | None:
    """The nearest folder above `posts_dir` holding a Jekyll `_config.yml`, or None."""
    start = posts_dir.absolute().parent
    for folder in (start, *start.parents):
        if any((folder / name).is_file() for name in CONFIG_FILES):
            return folder
    return None


def read_jekyll_config(root: Path) -> dict[str, Any]:
    """The site's `_config.yml` as a mapping ({} when there is none)."""
    for name in CONFIG_FILES:
        path = root / name
        try:
            stamp = path.stat().st_mtime_ns
        except OSError:
            continue
        return dict(_read_config(str(path), stamp))
    return {}


@functools.lru_cache(maxsize=16)
def _read_config(path: str, _stamp: int) -> Mapping[str, Any]:
    try:
        data = load_yaml(_read_site_file(Path(path)))
    except (OSError, UnicodeDecodeError, ValueError, yaml.YAMLError) as exc:
        raise ConfigError(f"{path}: cannot read Jekyll config: {exc}") from exc
    return data if isinstance(data, dict) else {}


def jekyll_site_keys(root: Path) -> dict[str, Any]:
    """The `site` settings the site's `_config.yml` gives (the posts' permalink included)."""
    data = read_jekyll_config(root)
    keys = {k: data[k] for k in _SITE_KEYS if data.get(k) is not None}
    if "title" not in keys and isinstance(data.get("name"), str) and data["name"].strip():
        keys["title"] = data["name"].strip()  # many themes (minima's forks...) use `name:`
    permalink = posts_permalink(data)
    if permalink:
        keys["permalink"] = permalink
    return keys


def posts_permalink(config: Mapping[str, Any]) -> str | None:
    """The permalink Jekyll gives posts: `collections.posts.permalink`, else `permalink`."""
    collections = config.get("collections")
    if isinstance(collections, dict):
        posts = collections.get("posts")
        if isinstance(posts, dict) and isinstance(posts.get("permalink"), str):
            return str(posts["permalink"])
    permalink = config.get("permalink")
    return permalink if isinstance(permalink, str) and permalink else None


@dataclass(frozen=True)
class DefaultsRule:
    """One `defaults:` entry of `_config.yml`: a scope (path, type) and the values it sets."""

    path: str
    type: str | None
    values: Mapping[str, Any]

    def applies(self, relative_path: str, doc_type: str) -> bool:
        """Jekyll's FrontmatterDefaults#applies? for a document's source path and type."""
        if self.type is not None and self.type != doc_type:
            return False
        if not self.path:
            return True
        ancestors = _ancestors(relative_path)
        if self.is_glob:
            pattern = _glob_regex(self.path)
            return any(pattern.fullmatch(a) for a in ancestors)
        return self.path.rstrip("/") in ancestors

    @property
    def is_glob(self) -> bool:
        """Whether the scope's path is a glob pattern (`*`, `?`)."""
        return "*" in self.path or "?" in self.path

    def outranks(self, other: DefaultsRule) -> bool:
        """Jekyll's has_precedence?: a longer path wins; on a tie, the one with a type."""
        if len(self.path) != len(other.path):
            return len(self.path) > len(other.path)
        return self.type is not None or other.type is None


def _ancestors(relative_path: str) -> list[str]:
    parts = relative_path.split("/")
    return ["/".join(parts[:i]) for i in range(len(parts), 0, -1)]


@functools.lru_cache(maxsize=256)
def _glob_regex(pattern: str) -> re.Pattern[str]:
    """A Ruby Dir.glob pattern as a regex: `*` stays in one folder, `**` crosses them."""
    out = []
    for piece in re.split(r"(\*\*/?|\*|\?)", pattern.rstrip("/")):
        if piece.startswith("**"):
            out.append("(?:.*/)?" if piece.endswith("/") else ".*")
        elif piece == "*":
            out.append("[^/]*")
        elif piece == "?":
            out.append("[^/]")
        else:
            out.append(re.escape(piece))
    return re.compile("".join(out))


def deep_merge(base: Mapping[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    """Jekyll's Utils.deep_merge_hashes: `over` wins, nested mappings merge."""
    if not any(isinstance(value, Mapping) for value in base.values()):
        return {**base, **over}  # nothing nested to merge (most defaults: layout, author...)
    merged = dict(base)
    for key, value in over.items():
        old = merged.get(key)
        if isinstance(old, Mapping) and isinstance(value, Mapping):
            merged[key] = deep_merge(old, value)
        else:
            merged[key] = value
    return merged


def _merge_rules(rules: list[DefaultsRule]) -> dict[str, Any]:
    """Jekyll's FrontmatterDefaults#all: the rules' values in order, a more specific one winning."""
    merged: dict[str, Any] = {}
    winner: DefaultsRule | None = None
    for rule in rules:
        if winner is None or rule.outranks(winner):
            merged = deep_merge(merged, rule.values)
            winner = rule
        else:
            merged = deep_merge(rule.values, merged)
    return merged


@dataclass
class JekyllSite:
    """A Jekyll source folder: where it is, its config, and what applies to each post."""

    root: Path
    config: Mapping[str, Any]
    defaults: tuple[DefaultsRule, ...] = ()
    exclude: tuple[str, ...] = DEFAULT_EXCLUDES
    include: tuple[str, ...] = ()
    _data: dict[str, Any] | None = field(default=None, repr=False)
    # (folder, type) -> (defaults every document there gets, rules that may add to one file's)
    _folder_defaults: dict[tuple[str, str], tuple[dict[str, Any], tuple[DefaultsRule, ...]]] = (
        field(default_factory=dict, repr=False)
    )

    def defaults_for(self, relative_path: str, doc_type: str = "posts") -> dict[str, Any]:
        """The front-matter defaults for one document, the most specific scope winning."""
        return dict(self._defaults(relative_path, doc_type)) if self.defaults else {}

    def with_defaults(
        self, relative_path: str, meta: dict[str, Any], doc_type: str = "posts"
    ) -> dict[str, Any]:
        """A document's front matter `meta` merged over its defaults (`meta` itself when
        there are none): what defaults_for and deep_merge give, without a copy in between."""
        if not self.defaults:
            return meta
        defaults = self._defaults(relative_path, doc_type)
        return deep_merge(defaults, meta) if defaults else meta

    def _defaults(self, relative_path: str, doc_type: str) -> Mapping[str, Any]:
        """The defaults for one document: its folder's, worked out once (not to be changed)."""
        relative_path = self.source_path(relative_path)
        folder = relative_path.rpartition("/")[0]
        key = (folder, doc_type)
        if key not in self._folder_defaults:
            self._folder_defaults[key] = self._defaults_in(folder, doc_type)
        merged, file_rules = self._folder_defaults[key]
        if file_rules and any(rule.applies(relative_path, doc_type) for rule in file_rules):
            return _merge_rules([r for r in self.defaults if r.applies(relative_path, doc_type)])
        return merged

    def _defaults_in(
        self, folder: str, doc_type: str
    ) -> tuple[dict[str, Any], tuple[DefaultsRule, ...]]:
        """What every document in `folder` gets, and the rules that may add to it for one file.

        A rule applies to a file if its scope is one of the file's folders (the same for the
        whole folder) or the file itself: only a glob, or a path naming a file in `folder`, can.
        """
        folder_rules, file_rules = [], []
        for rule in self.defaults:
            if rule.type is not None and rule.type != doc_type:
                continue
            if not rule.path or (folder and rule.applies(folder, doc_type)):
                folder_rules.append(rule)
            elif rule.is_glob or rule.path.rstrip("/").rpartition("/")[0] == folder:
                file_rules.append(rule)
        return _merge_rules(folder_rules), tuple(file_rules)

    def excluded(self, relative_path: str) -> bool:
        """Whether Jekyll's `exclude` (minus `include`) leaves this path out."""
        for prefix, pattern in self._exclude_patterns:
            if relative_path.startswith(prefix) or pattern.fullmatch(relative_path):
                return True
        return False

    def may_exclude_under(self, folder: str) -> bool:
        """Whether any `exclude` pattern could leave out something in `folder` (a shortcut)."""
        return any(
            any(c in prefix for c in "*?[{")
            or folder.startswith(prefix)
            or prefix.startswith(folder)
            for prefix, _pattern in self._exclude_patterns
        )

    @functools.cached_property
    def _exclude_patterns(self) -> list[tuple[str, re.Pattern[str]]]:
        return [
            (p.lstrip("/"), _glob_regex(p.lstrip("/")))
            for p in self.exclude
            if p not in self.include and p.lstrip("/")
        ]

    @functools.cached_property
    def source(self) -> Path:
        """Jekyll's source folder: the root, or the folder `source:` names (`source: src`)."""
        named = self.config.get("source")
        return self.root / str(named) if isinstance(named, str) and named.strip() else self.root

    @property
    def includes_dir(self) -> Path:
        """Where `{% include %}` finds its files (`includes_dir`, default `_includes`)."""
        return self.source / str(self.config.get("includes_dir") or "_includes")

    def source_path(self, relative_path: str) -> str:
        """A path from the root as Jekyll sees it, from the source folder (`src/_posts/a.md`
        -> `_posts/a.md`)."""
        prefix = self._source_prefix
        return relative_path.removeprefix(prefix) if prefix else relative_path

    @functools.cached_property
    def _source_prefix(self) -> str:
        prefix = self.source.relative_to(self.root).as_posix()
        return "" if prefix == "." else prefix + "/"

    @property
    def data(self) -> dict[str, Any]:
        """`site.data`: every `_data` file (YAML, JSON, CSV, TSV), read on first use."""
        if self._data is None:
            folder = self.source / str(self.config.get("data_dir") or "_data")
            self._data = _read_data_folder(folder)
        return self._data

    def liquid_site(self, settings: SiteSettings) -> SiteVariables:
        """The `site` variable Liquid sees: `_config.yml`, the digest's own values, `data`."""
        own = {"url": settings.url, "baseurl": settings.baseurl, "title": settings.title}
        return SiteVariables(self, {**self.config, **own})


class SiteVariables(Mapping[str, Any]):
    """Jekyll's `site` drop: config keys, with `site.data` read only when a template uses it."""

    def __init__(self, site: JekyllSite, values: dict[str, Any]) -> None:
        self._site = site
        self._values = values

    def __getitem__(self, key: str) -> Any:
        if key == "data":
            return self._site.data
        return self._values[key]

    def __iter__(self) -> Iterator[str]:
        return iter([*self._values, "data"])

    def __len__(self) -> int:
        return len(self._values) + 1


def open_site(settings: SiteSettings) -> JekyllSite:
    """The Jekyll site of `settings`: `site.root`, else found above posts_dir."""
    root = settings.root or find_site_root(settings.posts_dir) or settings.posts_dir.parent
    config = read_jekyll_config(root)
    rules = []
    for entry in config.get("defaults") or []:
        if not isinstance(entry, dict) or not isinstance(entry.get("values"), dict):
            continue
        scope = entry.get("scope")
        if not isinstance(scope, dict):
            scope = {}
        path = str(scope.get("path") or "").lstrip("/")
        kind = scope.get("type")
        kind = _LEGACY_TYPES.get(str(kind), str(kind)) if kind else None
        rules.append(DefaultsRule(path, kind, entry["values"]))
    exclude = [str(p) for p in config.get("exclude") or [] if p]
    include = tuple(str(p) for p in config.get("include") or [] if p)
    return JekyllSite(
        root=root,
        config=config,
        defaults=tuple(rules),
        exclude=tuple(dict.fromkeys([*exclude, *DEFAULT_EXCLUDES])),
        include=include,
    )


def _read_site_file(path: Path) -> str:
    """A site file's text, through the guards: a regular file of at most MAX_FILE_BYTES."""
    return read_regular_file(path, MAX_FILE_BYTES, cap="{max_bytes:,} bytes").decode("utf-8-sig")


def _read_data_folder(folder: Path, seen: frozenset[str] = frozenset()) -> dict[str, Any]:
    data: dict[str, Any] = {}
    real = os.path.realpath(folder)
    if not folder.is_dir() or real in seen or len(seen) >= MAX_NESTING:
        return data  # a folder linked into itself is read once
    for path in sorted(folder.iterdir()):
        if path.name.startswith((".", "_", "#")):
            continue
        if path.is_dir():
            data[path.name] = _read_data_folder(path, seen | {real})
            continue
        try:
            value = _read_data_file(path)
        except (OSError, UnicodeDecodeError, ValueError, yaml.YAMLError, csv.Error) as exc:
            log.warning("%s: cannot read data file: %s", path, exc)
            continue
        if value is not None:
            data[path.stem] = value
    return data


def _read_data_file(path: Path) -> Any:
    suffix = path.suffix.lower()
    if suffix in (".yml", ".yaml"):
        return load_yaml(_read_site_file(path))
    if suffix == ".json":
        return load_json(_read_site_file(path))
    if suffix in (".csv", ".tsv"):
        handle = io.StringIO(_read_site_file(path), newline="")
        return list(csv.DictReader(handle, delimiter="\t" if suffix == ".tsv" else ","))
    return None
