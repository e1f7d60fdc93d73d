"""Ten real Jekyll blogs, read with the config a user would write, against what Jekyll built.

The sites live outside the project (../shared/realsites, or $DIGEST_REALSITES); absent: skipped.
"""

from __future__ import annotations

import json
import os
from datetime import datetime
from pathlib import Path

import pytest

from digest.config import load_settings
from digest.sources.jekyll.reader import load_posts
from tests.helpers.realsites import absent

ROOT = Path(__file__).resolve().parents[2]
# ../shared/realsites from the repo root (a worktree under wt/ looks one level further up).
_CANDIDATES = [ROOT.parent / "shared/realsites", ROOT.parent.parent / "shared/realsites"]
REALSITES = Path(
    os.environ.get("DIGEST_REALSITES")
    or next((str(c) for c in _CANDIDATES if c.is_dir()), str(_CANDIDATES[0]))
)
JEKYLL_SITES = REALSITES / "jekyll"
SITES = sorted(p.name for p in JEKYLL_SITES.iterdir()) if JEKYLL_SITES.is_dir() else []


def agreement(name: str) -> dict[str, int]:
    """How many of the oracle's posts we read with the same URL, date and categories."""
    folder = JEKYLL_SITES / name
    settings = load_settings(folder / "digest.yaml", environ={})
    ours = {p.id: p for p in load_posts(settings.site).posts}
    oracle = json.loads((folder / "oracle.json").read_text(encoding="utf-8"))["posts"]
    counts = {"posts": len(oracle), "url": 0, "date": 0, "categories": 0}
    for entry in oracle:
        post = ours.get(entry["relative_path"])
        if post is None:
            continue
        counts["url"] += post.url == entry["abs"]
        counts["date"] += post.date == datetime.fromisoformat(entry["date"])
        counts["categories"] += list(post.categories) == entry["categories"]
    return counts


@pytest.mark.skipif(not SITES, reason=absent(JEKYLL_SITES))
def test_urls_dates_and_categories_agree_with_jekyll_on_99_percent() -> None:
    total = {"posts": 0, "url": 0, "date": 0, "categories": 0}
    for name in SITES:
        counts = agreement(name)
        for key, value in counts.items():
            total[key] += value
    for key in ("url", "date", "categories"):
        assert total[key] >= 0.99 * total["posts"], (key, total)


@pytest.mark.skipif(not SITES, reason=absent(JEKYLL_SITES))
@pytest.mark.parametrize("name", SITES)
def test_each_real_site_agrees(name: str) -> None:
    counts = agreement(name)
    # Per site a little looser: one odd post in a small blog is not a pattern.
    for key in ("url", "date", "categories"):
        assert counts[key] >= 0.95 * counts["posts"], (name, key, counts)


def test_the_skip_reason_says_where_to_point_them() -> None:
    reasons = [
        mark.kwargs["reason"]
        for test in (test_urls_dates_and_categories_agree_with_jekyll_on_99_percent,)
        for mark in getattr(test, "pytestmark", [])
        if mark.name == "skipif"
    ]
    assert reasons == [
        f"no real sites at {JEKYLL_SITES} (set DIGEST_REALSITES to the folder that holds them)"
    ]
