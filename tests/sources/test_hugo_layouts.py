"""Hugo's ways of finding config and content, each as a small site built by real Hugo: hugo.yml,
hugo.json, config/_default with config/production over it, content mounts with and without a
language (includeFiles/excludeFiles), contentDir per language. digest's URLs, dates, sections
and languages must be Hugo's. Skipped when hugo is not installed.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from digest.sources.hugo.config import is_hugo_site
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
def test_every_layout_is_a_hugo_site(layout: str, tmp_path: Path) -> None:
    assert is_hugo_site(write_layout(layout, tmp_path / "site"))
