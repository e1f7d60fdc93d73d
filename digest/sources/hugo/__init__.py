"""Hugo sites: what makes a folder one (here: file names only, so that telling a Jekyll site
from a Hugo one imports no parser), its config (config.py, mounts.py), its pages (reader.py).
"""

from __future__ import annotations

from pathlib import Path

from digest.errors import ConfigError

# Hugo 0.111 looks for hugo.* first (new in 0.110), then config.*; the first one found is used.
ROOT_CONFIG_NAMES = tuple(
    f"{stem}.{ext}" for stem in ("hugo", "config") for ext in ("toml", "yaml", "yml", "json")
)
CONFIG_DIR = "config"


def is_hugo_site(root: Path, *, digest_dir: Path | None = None) -> bool:
    """A folder with a Hugo config (file or config/_default) and content: a content/ folder,
    or one the config mounts. In the folder of digest's own config.yaml (`digest_dir`, or when
    it is not known) config.yaml alone does not count; elsewhere it is the Hugo site's."""
    own = digest_dir is None or root.absolute() == digest_dir.absolute()
    names = [name for name in ROOT_CONFIG_NAMES if not (own and name == "config.yaml")]
    has_config = any((root / name).is_file() for name in names)
    has_config = has_config or (root / CONFIG_DIR / "_default").is_dir()
    if not has_config:
        return False
    if (root / "content").is_dir():
        return True
    from digest.sources.hugo.config import load_hugo_config  # TOML and friends: Hugo's only

    try:
        mounts = load_hugo_config(root).content_mounts
    except ConfigError:
        return False
    return any(mount.source.is_dir() for mount in mounts)
