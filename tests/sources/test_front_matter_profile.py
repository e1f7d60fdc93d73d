"""python-frontmatter is on the live path: a profile of `digest posts` on a Jekyll site and on
a Hugo site shows its functions splitting each post's front matter, and its handlers loading it
with the bounded loaders of sources.guards.
"""

from __future__ import annotations

import cProfile
import pstats
import shutil
from pathlib import Path

import yaml
from click.testing import CliRunner

from digest.cli import cli
from digest.sources.hugo.reader import read_hugo_site

DATA = Path(__file__).parents[1] / "data"


def profiled_posts(config: Path) -> dict[tuple[str, str], int]:
    """`digest posts --all` run in this process under cProfile: (file, function) -> calls."""
    profile = cProfile.Profile()
    args = ["--config", str(config), "posts", "--all", "--as-of", "2026-11-29T12:00:00+00:00"]
    result = profile.runcall(CliRunner().invoke, cli, args)
    assert result.exit_code == 0, result.output
    stats = pstats.Stats(profile).stats  # type: ignore[attr-defined]
    return {(Path(f).as_posix(), name): calls for (f, _, name), (calls, *_) in stats.items()}


def calls_of(profile: dict[tuple[str, str], int], file_end: str, function: str) -> int:
    return sum(
        n for (file, name), n in profile.items() if file.endswith(file_end) and name == function
    )


def write_config(folder: Path, site: dict[str, object]) -> Path:
    config = folder / "config.yaml"
    settings = {
        "site": {"title": "Blog", "url": "https://blog.example.com", **site},
        "email": {"from": "News <news@example.com>"},
        "database": {"url": f"sqlite:///{folder / 'digest.db'}"},
    }
    config.write_text(yaml.safe_dump(settings), encoding="utf-8")
    return config


def test_a_jekyll_sites_posts_are_split_by_python_frontmatter(tmp_path: Path) -> None:
    posts = tmp_path / "_posts"
    posts.mkdir()
    for day in range(1, 6):
        text = f"---\ntitle: Post {day}\nauthor: {{name: Ada}}\n---\nBody {day}\n"
        (posts / f"2026-11-0{day}-post.md").write_text(text, encoding="utf-8")
    profile = profiled_posts(write_config(tmp_path, {"posts_dir": "_posts"}))
    assert calls_of(profile, "frontmatter/__init__.py", "detect_format") == 5
    assert calls_of(profile, "frontmatter/default_handlers.py", "split") == 5
    assert calls_of(profile, "digest/sources/front_matter.py", "load") == 5  # JekyllYamlHandler
    assert calls_of(profile, "digest/sources/guards.py", "load_yaml") == 5  # a mapping: YAML


def test_a_hugo_sites_pages_are_split_by_python_frontmatter(tmp_path: Path) -> None:
    shutil.copytree(DATA / "hugo_site", tmp_path / "blog")
    profile = profiled_posts(write_config(tmp_path, {"root": "blog"}))
    pages = len(read_hugo_site(tmp_path / "blog").pages)
    assert pages >= 10
    assert calls_of(profile, "frontmatter/__init__.py", "detect_format") >= pages
    assert calls_of(profile, "frontmatter/default_handlers.py", "split") >= 5  # YAML and TOML
    for loader in ("load_yaml", "load_toml", "load_json"):
        assert calls_of(profile, "digest/sources/guards.py", loader) >= 1, loader
