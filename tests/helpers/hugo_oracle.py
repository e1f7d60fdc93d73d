"""Build the oracle of a small Hugo site with real Hugo: every regular page as Hugo sees it.

The layout in the site's layouts/index.html writes the pages as JSON; two builds at a fixed clock
give the page list (drafts, future and expired included) and what a plain build publishes.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

HUGO = shutil.which("hugo")


def _pages(site: Path, out: Path, clock: str, *flags: str) -> list[dict[str, Any]]:
    subprocess.run(
        [str(HUGO), "-s", str(site), "-d", str(out), "--clock", clock, "--quiet", *flags],
        check=True,
        capture_output=True,
    )
    pages: list[dict[str, Any]] = []
    for index in sorted(out.rglob("index.html")):
        text = index.read_text(encoding="utf-8").strip()
        if text.startswith("["):
            pages.extend(json.loads(text))
    return pages


def build_oracle(site: Path, work: Path, clock: str) -> dict[str, Any]:
    """Run Hugo on a copy of `site` (Hugo writes a lock file into the source folder)."""
    copy = work / "site"
    shutil.copytree(site, copy)
    every = _pages(copy, work / "all", clock, "--buildDrafts", "--buildFuture", "--buildExpired")
    published = {(p["path"], p["lang"]) for p in _pages(copy, work / "default", clock)}
    for page in every:
        for key in ("categories", "tags"):
            if isinstance(page[key], str):
                page[key] = [page[key]]
        page["published_default"] = (page["path"], page["lang"]) in published
    every.sort(key=lambda p: (p["path"], p["lang"]))
    return {"time": clock, "posts": every}
