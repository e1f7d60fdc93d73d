"""Every real site in ../shared/realsites (or $DIGEST_REALSITES), old and new, against what its
own generator built: found, URL, date, categories, tags, title and draft/published status 100%;
excerpts at least 95% alike. Skipped when the sites are absent.

`pytest -s` prints each site's figures.
"""

from __future__ import annotations

import pytest

from tests.helpers.realsites import (
    BLOG_FIELDS,
    HUGO_FIELDS,
    JEKYLL_FIELDS,
    REALSITES,
    Agreement,
    absent,
    hugo_agreement,
    hugo_blog_agreement,
    jekyll_agreement,
    site_names,
)

JEKYLL = site_names("jekyll")
HUGO = site_names("hugo")
EXCERPTS = 0.95


def _assert_all(name: str, result: Agreement, keys: tuple[str, ...]) -> None:
    print(result.line(name, keys))
    assert result.entries > 0
    for key in keys:
        wrong = [w for w in result.wrong if f" {key}:" in w or w.startswith(("missing", "not a"))]
        assert result.share(key) == 1.0, (name, key, wrong[:5])
    assert not [w for w in result.wrong if w.startswith("not a page")]
    assert result.excerpt_similarity >= EXCERPTS, name


@pytest.mark.skipif(not JEKYLL, reason=absent(REALSITES / "jekyll"))
@pytest.mark.parametrize("name", JEKYLL)
def test_jekyll_site_reads_as_jekyll_built_it(name: str) -> None:
    _assert_all(name, jekyll_agreement(name), JEKYLL_FIELDS)


@pytest.mark.skipif(not HUGO, reason=absent(REALSITES / "hugo"))
@pytest.mark.parametrize("name", HUGO)
def test_hugo_site_reads_as_hugo_built_it(name: str) -> None:
    _assert_all(name, hugo_agreement(name), HUGO_FIELDS)


@pytest.mark.skipif(not HUGO, reason=absent(REALSITES / "hugo"))
@pytest.mark.parametrize("name", HUGO)
def test_hugo_blog_posts_are_the_ones_hugo_lists(name: str) -> None:
    _assert_all(name, hugo_blog_agreement(name), BLOG_FIELDS)


def test_the_skip_reason_says_where_to_point_them() -> None:
    marks = getattr(test_jekyll_site_reads_as_jekyll_built_it, "pytestmark", [])
    reasons = [mark.kwargs["reason"] for mark in marks if mark.name == "skipif"]
    where = REALSITES / "jekyll"
    assert reasons == [
        f"no real sites at {where} (set DIGEST_REALSITES to the folder that holds them)"
    ]
