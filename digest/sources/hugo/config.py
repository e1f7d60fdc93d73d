"""Read a Hugo site's configuration the way Hugo 0.111 merges it (root file, config/ folder).

sources.hugo reads pages with these settings: base URL, time zone, languages, permalinks.
"""

from __future__ import annotations

import json
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml

from digest.errors import ConfigError
from digest.sources.guards import (
    MAX_FILE_BYTES,
    FileRefusedError,
    LimitError,
    load_json,
    load_toml,
    load_yaml,
    read_regular_file,
)
from digest.sources.hugo import CONFIG_DIR, ROOT_CONFIG_NAMES
from digest.sources.hugo.mounts import ContentMount, default_content_mounts, module_content_mounts

# `hugo` (a build, as opposed to `hugo server`) uses the production environment.
ENVIRONMENT = "production"
DEFAULT_TAXONOMIES = {"category": "categories", "tag": "tags"}
DEFAULT_SUMMARY_LENGTH = 70
# Hugo's [frontmatter] lists before its aliases are added: the first date found wins.
_DATE_DEFAULTS: Mapping[str, tuple[str, ...]] = {
    "date": ("date", "publishdate", "lastmod"),
    "publishdate": ("publishdate", "date"),
    "lastmod": (":git", "lastmod", "date", "publishdate"),
    "expirydate": ("expirydate",),
}
_DATE_ALIASES = {
    "publishdate": ("pubdate", "published"),
    "lastmod": ("modified",),
    "expirydate": ("unpublishdate",),
}


@dataclass(frozen=True)
class HugoLanguage:
    """One configured language: where its content is and how its URLs start."""

    code: str
    title: str
    weight: int
    content_dir: Path
    own_content_dir: bool
    base_url: str
    url_prefix: str
    taxonomies: Mapping[str, str]


@dataclass(frozen=True)
class HugoConfig:
    """What of a Hugo site's merged config decides its pages' dates, URLs and summaries."""

    root: Path
    title: str
    base_url: str
    time_zone: ZoneInfo
    default_language: str
    languages: tuple[HugoLanguage, ...]
    permalinks: Mapping[str, str]
    ugly_urls: bool
    ugly_sections: frozenset[str]
    main_sections: tuple[str, ...]
    summary_length: int
    ignore_files: tuple[re.Pattern[str], ...]
    disable_path_to_lower: bool
    remove_path_accents: bool
    unsafe_html: bool
    date_keys: Mapping[str, tuple[str, ...]]
    params: Mapping[str, Any] = field(default_factory=dict)
    content_mounts: tuple[ContentMount, ...] = ()
    has_cjk: bool = False
    disabled_languages: frozenset[str] = frozenset()

    def language(self, code: str) -> HugoLanguage:
        """The language `code` names: exactly, else by its primary subtag (en-GB -> en)."""
        wanted = code.strip().lower()
        for candidate in (wanted, wanted.split("-")[0]):
            for language in self.languages:
                if language.code == candidate:
                    return language
        codes = ", ".join(lang.code for lang in self.languages)
        raise ConfigError(f"site.lang: {code!r} is not one of the Hugo site's languages ({codes})")


def find_root_config(root: Path) -> Path | None:
    """The site's root config file (hugo.toml, config.yaml ...), if it has one."""
    for name in ROOT_CONFIG_NAMES:
        candidate = root / name
        if candidate.is_file():
            return candidate
    return None


def load_hugo_config(root: Path) -> HugoConfig:
    """Read and merge the site's config files (keys compared case-insensitively, as Hugo does)."""
    merged = _read_config_dir(root)
    root_file = find_root_config(root)
    if root_file is None and not (root / CONFIG_DIR / "_default").is_dir():
        raise ConfigError(
            f"site.root: {root} has no Hugo config (hugo.toml, config.toml, config/_default/)"
        )
    themes = _theme_dirs(root, merged)
    for theme in themes:
        _merge_theme(merged, _read_config_dir(theme))
    return _settings(root, merged, themes)


def _read_config_dir(root: Path) -> dict[str, Any]:
    """A folder's own config: its root file, then config/_default/ and config/production/."""
    merged: dict[str, Any] = {}
    root_file = find_root_config(root)
    if root_file is not None:
        _merge(merged, _read_config_file(root_file))
    for env in ("_default", ENVIRONMENT):
        folder = root / CONFIG_DIR / env
        if folder.is_dir():
            for file in sorted(folder.rglob("*")):
                # Not is_file(): a FIFO or a device by a config's name is refused out loud.
                if file.suffix.lower() in (".toml", ".yaml", ".yml", ".json") and not file.is_dir():
                    _merge(merged, _place(file.relative_to(folder), _read_config_file(file)))
    return merged


def _theme_dirs(root: Path, config: Mapping[str, Any]) -> list[Path]:
    """The site's themes that are in its tree (themes/NAME); a theme fetched as a Hugo module
    is not, and is left out."""
    names = config.get("theme")
    if isinstance(names, str):
        names = [n.strip() for n in names.split(",")]
    if not isinstance(names, list):
        return []
    themes_dir = root / str(config.get("themesdir") or "themes")
    found = []
    for name in names:
        folder = themes_dir / str(name)
        if str(name) and folder.is_dir():
            found.append(folder)
    return found


def _merge_theme(into: dict[str, Any], theme: Mapping[str, Any]) -> None:
    """What Hugo 0.111 takes from a theme's config: params the site does not set (a theme's
    permalinks and other keys stay the theme's own)."""
    params = theme.get("params")
    if isinstance(params, Mapping):
        merged = dict(params)
        _merge(merged, into.get("params") or {})
        into["params"] = merged


def _read_config_file(file: Path) -> dict[str, Any]:
    """One Hugo config file, through the guards every reader uses: a regular file (a FIFO or
    a link to /dev/zero is refused, never opened), at most MAX_FILE_BYTES, nesting and YAML
    aliases bounded."""
    try:
        raw = read_regular_file(file, MAX_FILE_BYTES, cap="{max_bytes:,} bytes")
        text = raw.decode("utf-8-sig")
    except FileRefusedError as exc:
        raise ConfigError(f"{file}: the Hugo config is not read: {exc}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{file}: cannot read the Hugo config: {exc}") from exc
    try:
        if file.suffix == ".toml":
            data: Any = load_toml(text)
        elif file.suffix == ".json":
            data = load_json(text)
        else:
            data = load_yaml(text)
    except LimitError as exc:
        raise ConfigError(f"{file}: the Hugo config is not read: {exc}") from None
    except (tomllib.TOMLDecodeError, json.JSONDecodeError, yaml.YAMLError) as exc:
        reason = str(exc).splitlines()[0]
        raise ConfigError(f"{file}: the Hugo config cannot be parsed: {reason}") from exc
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{file}: the Hugo config must be keys and values")
    return lower_keys(data)


def lower_keys(data: Mapping[Any, Any]) -> dict[str, Any]:
    """Hugo compares config and front matter keys case-insensitively: lower-case them all."""
    result: dict[str, Any] = {}
    for key, value in data.items():
        if isinstance(value, Mapping):
            value = lower_keys(value)
        result[str(key).lower()] = value
    return result


def _place(relative: Path, data: dict[str, Any]) -> dict[str, Any]:
    """Where a config/_default file's keys go: config.toml at the top, params.toml under params,
    languages.fr.toml under languages.fr, menus.fr.toml under languages.fr.menus."""
    parts = relative.with_suffix("").as_posix().lower().split("/")
    name_parts = parts[-1].split(".")
    stem, lang = name_parts[0], (name_parts[1] if len(name_parts) > 1 else None)
    if stem in ("config", "hugo") and len(parts) == 1:
        return data
    if stem == "languages":
        return {"languages": {lang: data} if lang else data}
    if lang:
        return {"languages": {lang: {stem: data}}}
    return {stem: data}


def _merge(into: dict[str, Any], data: Mapping[str, Any]) -> None:
    for key, value in data.items():
        current = into.get(key)
        if isinstance(current, dict) and isinstance(value, Mapping):
            _merge(current, value)
        else:
            into[key] = dict(value) if isinstance(value, Mapping) else value


def _settings(root: Path, config: Mapping[str, Any], themes: list[Path]) -> HugoConfig:
    base_url = str(config.get("baseurl") or "")
    zone_name = str(config.get("timezone") or "UTC")
    try:
        time_zone = ZoneInfo(zone_name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigError(f"{root}: Hugo's timeZone {zone_name!r} is not a known zone") from None
    params = config.get("params") if isinstance(config.get("params"), Mapping) else {}
    assert isinstance(params, Mapping)
    main = params.get("mainsections", config.get("mainsections"))
    if isinstance(main, str):
        main = [main]
    ugly = config.get("uglyurls", False)
    ugly_sections = (
        frozenset(str(k) for k, v in ugly.items() if v is True)
        if isinstance(ugly, Mapping)
        else frozenset()
    )
    ignore = config.get("ignorefiles") or []
    goldmark = _table(_table(_table(config, "markup"), "goldmark"), "renderer")
    languages, disabled = _languages(root, config, base_url)
    return HugoConfig(
        root=root,
        title=str(config.get("title") or ""),  # a language's own title: HugoLanguage.title
        base_url=base_url,
        time_zone=time_zone,
        default_language=str(config.get("defaultcontentlanguage") or "en").lower(),
        languages=languages,
        permalinks={str(k).lower(): str(v) for k, v in _table(config, "permalinks").items()},
        ugly_urls=ugly is True,
        ugly_sections=ugly_sections,
        main_sections=tuple(str(s) for s in main or ()),
        summary_length=int(config.get("summarylength") or DEFAULT_SUMMARY_LENGTH),
        ignore_files=tuple(re.compile(str(p)) for p in ignore),
        disable_path_to_lower=bool(config.get("disablepathtolower", False)),
        remove_path_accents=bool(config.get("removepathaccents", False)),
        unsafe_html=bool(goldmark.get("unsafe", False)),
        date_keys=_date_keys(_table(config, "frontmatter")),
        params=params,
        content_mounts=_content_mounts(root, config, languages, themes),
        disabled_languages=disabled,
        has_cjk=config.get("hascjklanguage") is True,
    )


def _relative(root: Path, folder: Path) -> str:
    try:
        return folder.relative_to(root).as_posix()
    except ValueError:
        return str(folder)


def _content_mounts(
    root: Path, config: Mapping[str, Any], languages: tuple[HugoLanguage, ...], themes: list[Path]
) -> tuple[ContentMount, ...]:
    """The site's content folders as Hugo mounts them, then each in-tree theme's."""
    codes = [lang.code for lang in languages]
    mounts = module_content_mounts(root, _table(config, "module"), codes)
    if mounts is None:
        content_dir = str(config.get("contentdir") or "content")
        default = str(config.get("defaultcontentlanguage") or "en").lower()
        ordered = sorted(languages, key=lambda lang: lang.code != default)
        own = [
            (lang.code, _relative(root, lang.content_dir) if lang.own_content_dir else None)
            for lang in ordered
        ]
        mounts = default_content_mounts(root, content_dir, own)
    for theme in themes:
        theme_config = _read_config_dir(theme)
        theme_mounts = module_content_mounts(theme, _table(theme_config, "module"), codes)
        if theme_mounts is None:
            theme_mounts = default_content_mounts(theme, "content", [])
        mounts.extend(theme_mounts)
    return tuple(mounts)


def _table(config: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    value = config.get(key)
    return value if isinstance(value, Mapping) else {}


def _date_keys(front: Mapping[str, Any]) -> Mapping[str, tuple[str, ...]]:
    """Each date's handlers in order (`:default` expanded, aliases after their key), as
    Hugo's pagemeta builds them: front matter keys, `:filename`, `:filemodtime`, `:git`."""
    keys: dict[str, tuple[str, ...]] = {}
    for name, defaults in _DATE_DEFAULTS.items():
        value = front.get(name, defaults)
        if isinstance(value, str):
            value = [value]
        given = [str(v).lower() for v in value] if isinstance(value, list) else list(defaults)
        expanded: list[str] = []
        for item in given:
            expanded.extend(defaults if item == ":default" else (item,))
        with_aliases: list[str] = []
        for item in expanded:
            with_aliases.extend((item, *_DATE_ALIASES.get(item, ())))
        keys[name] = tuple(dict.fromkeys(with_aliases))
    return keys


def _languages(
    root: Path, config: Mapping[str, Any], base_url: str
) -> tuple[tuple[HugoLanguage, ...], frozenset[str]]:
    """The languages the site builds, and the configured ones it does not (disabled)."""
    default = str(config.get("defaultcontentlanguage") or "en").lower()
    in_subdir = bool(config.get("defaultcontentlanguageinsubdir", False))
    content_dir = root / str(config.get("contentdir") or "content")
    table = _table(config, "languages")
    found: list[HugoLanguage] = []
    codes = [str(code).lower() for code in table] or [default]
    off = config.get("disablelanguages")
    disabled = {str(code).lower() for code in off} if isinstance(off, list) else set()
    disabled |= {
        c for c in codes if isinstance(table.get(c), Mapping) and table[c].get("disabled") is True
    }
    disabled.discard(default)  # Hugo refuses to disable the default language
    codes = [c for c in codes if c not in disabled]
    multihost = any(isinstance(table.get(c), Mapping) and table[c].get("baseurl") for c in codes)
    for code in codes:
        entry = table.get(code) if isinstance(table.get(code), Mapping) else {}
        assert isinstance(entry, Mapping)
        own_dir = entry.get("contentdir")
        taxonomies = entry.get("taxonomies", config.get("taxonomies"))
        lang_base = str(entry.get("baseurl") or base_url)
        prefix = "" if multihost or (code == default and not in_subdir) else f"/{code}"
        found.append(
            HugoLanguage(
                code=code,
                title=str(entry.get("title") or config.get("title") or ""),
                weight=int(entry.get("weight") or 0),
                content_dir=root / str(own_dir) if own_dir else content_dir,
                own_content_dir=bool(own_dir),
                base_url=lang_base,
                url_prefix=prefix,
                taxonomies=(
                    {str(k): str(v) for k, v in taxonomies.items()}
                    if isinstance(taxonomies, Mapping)
                    else dict(DEFAULT_TAXONOMIES)
                ),
            )
        )
    found.sort(key=lambda lang: (lang.weight == 0, lang.weight, lang.code))
    return tuple(found), frozenset(disabled)
