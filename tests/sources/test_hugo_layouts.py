"""Hugo's ways of finding config and content, each as a small site built by real Hugo: hugo.yml,
hugo.json, config/_default with config/production over it, content mounts with and without a
language (includeFiles/excludeFiles), contentDir per language. digest's URLs, dates, sections
and languages must be Hugo's. Skipped when hugo is not installed.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from digest.config import load_settings
from digest.sources.hugo import is_hugo_site
from digest.sources.hugo.reader import read_hugo_site
from tests.helpers.hugo_layouts import HUGO, LAYOUTS, hugo_pages, write_layout

needs_hugo = pytest.mark.skipif(HUGO is None, reason="hugo is not installed (apt-get install hugo)")


@needs_hugo
@pytest.mark.parametrize("layout", sorted(LAYOUTS))
def test_pages_are_the_ones_hugo_builds(layout: str, tmp_path: Path) -> None:
    site = write_layout(layout, tmp_path / "site")
    hugo = hugo_pages(site, tmp_path)
    read = read_hugo_site(site)
    ours = [
        {
            "file": page.relative_path,
            "lang": page.lang,
            "section": page.section,
            "abs": page.permalink,
            "date": page.date.isoformat() if page.date else "",
        }
        for page in read.pages
    ]
    ours.sort(key=lambda p: (p["file"], p["lang"]))
    assert hugo["pages"], layout
    assert ours == hugo["pages"]
    default = read.config.default_language
    assert list(read.main_sections(default)) == hugo["main"]


@pytest.mark.parametrize("layout", sorted(LAYOUTS))
def test_every_layout_is_a_hugo_site_a_digest_config_finds(layout: str, tmp_path: Path) -> None:
    # digest's config.yaml is in tmp_path; the site's own config.yaml (if any) is the Hugo one.
    site = write_layout(layout, tmp_path / "site")
    assert is_hugo_site(site, digest_dir=tmp_path)
    config = tmp_path / "config.yaml"
    config.write_text(
        "site:\n  root: site\n  title: T\nemail:\n  from: a@example.com\n", encoding="utf-8"
    )
    settings = load_settings(config, environ={})
    assert settings.site.source == "hugo" and settings.site.url.startswith("https://")


def test_config_yaml_beside_digests_own_is_not_taken_for_hugos(tmp_path: Path) -> None:
    (tmp_path / "content").mkdir()
    (tmp_path / "config.yaml").write_text("site:\n  title: T\n", encoding="utf-8")
    assert not is_hugo_site(tmp_path, digest_dir=tmp_path)
