"""Which kind of site a config names (Jekyll, Hugo or a feed), and the keys its own config gives.

config ─► site_detection: `site` filled in from `_config.yml` or `hugo.toml`, and checked to exist.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from digest.errors import ConfigError
from digest.sources.hugo import is_hugo_site
from digest.sources.jekyll.site import find_site_root, jekyll_site_keys

if TYPE_CHECKING:
    from digest.settings import SiteSettings

FEED_SCHEMES = ("http://", "https://")


def detect_site(site: dict[str, Any], base: Path) -> dict[str, Any]:
    """`site` with its source detected (feed_url: feed; a Hugo config beside content/: hugo;
    else jekyll), its paths resolved, and the keys the site's own config gives filled in."""
    given_root = base / Path(str(site["root"])) if site.get("root") else None
    kind = site.get("source")
    if kind is None:
        hugo = is_hugo_site(given_root or base, digest_dir=base)
        kind = "feed" if site.get("feed_url") else "hugo" if hugo else "jekyll"
    site = {**site, "source": kind}
    feed_url = site.get("feed_url")
    if isinstance(feed_url, str) and feed_url and not feed_url.lower().startswith(FEED_SCHEMES):
        site["feed_url"] = str(base / Path(feed_url.removeprefix("file://")).expanduser())
    if kind == "hugo":
        root = given_root or base
        return {**_hugo_site(root, site.get("lang"), base), **site, "root": root}
    if kind == "feed":
        return {**site, "root": given_root or base}
    posts_dir = base / Path(str(site.get("posts_dir") or "_posts"))
    posts_dir = posts_dir if given_root is None or site.get("posts_dir") else given_root / "_posts"
    root = given_root or find_site_root(posts_dir) or posts_dir.parent
    return {**jekyll_site_keys(root), **site, "posts_dir": posts_dir, "root": root}


def _hugo_site(root: Path, site_lang: object, base: Path) -> dict[str, Any]:
    """title, url, timezone and lang from a Hugo site's own config (if it is one)."""
    if not is_hugo_site(root, digest_dir=base):
        return {}
    from digest.sources.hugo.config import load_hugo_config  # TOML and friends: Hugo's only

    config = load_hugo_config(root)
    keys: dict[str, Any] = {"lang": config.default_language}
    language = config.language(str(site_lang)) if site_lang else None
    titles = [language.title if language else "", config.title]
    titles += [lang.title for lang in config.languages if lang.code == config.default_language]
    title = next((t for t in titles if t), "")
    if title:
        keys["title"] = title
    if config.base_url.lower().startswith(FEED_SCHEMES):
        keys["url"] = config.base_url
    if config.time_zone.key != "UTC":
        keys["timezone"] = config.time_zone.key
    return keys


def check_site_source(site: SiteSettings, config_file: Path) -> None:
    """The folder or feed the site's source names must be there (exit 2 otherwise)."""
    if site.source == "jekyll" and not site.posts_dir.is_dir():
        raise ConfigError(f"{config_file}: site.posts_dir: folder {site.posts_dir} does not exist")
    if site.source == "hugo" and (
        site.root is None or not is_hugo_site(site.root, digest_dir=config_file.parent)
    ):
        raise ConfigError(
            f"{config_file}: site.root: {site.root} is not a Hugo site "
            "(no Hugo config such as hugo.toml or config/_default/ with content/ or "
            "the content folders its module.mounts name)"
        )
    if site.source == "feed":
        if not site.feed_url:
            raise ConfigError(f"{config_file}: site.feed_url: required when site.source is feed")
        remote = site.feed_url.lower().startswith(FEED_SCHEMES)
        if not remote and not Path(site.feed_url).is_file():
            raise ConfigError(
                f"{config_file}: site.feed_url: {site.feed_url} is neither an http(s) URL "
                "nor a file"
            )
