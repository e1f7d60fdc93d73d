"""Running digest as a user does: the console script, a send in its own process, waiting on it."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from tests.helpers.site_fixtures import AS_OF, Site, add_subscribers, make_site

ROOT = Path(__file__).resolve().parents[2]


def digest_script() -> str:
    found = shutil.which("digest", path=str(Path(sys.executable).parent)) or shutil.which("digest")
    if found is None:
        pytest.fail("the digest console script is not installed: pip install -e '.[dev]'")
    return found


def start_send(site: Site, *extra: str) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DIGEST_")}
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "digest",
            "--config",
            str(site.config_path),
            "send",
            "weekly",
            "--as-of",
            AS_OF.isoformat(),
            *extra,
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def wait_for(predicate: Any, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting")
        time.sleep(0.01)


def people(n: int) -> list[tuple[str, list[str]]]:
    cats: list[list[str]] = [["Engineering"], ["Culture"], []]
    return [(f"u{i:04d}@example.com", cats[i % 3]) for i in range(n)]


def make_busy_site(
    tmp_path: Path,
    database_url: str,
    port: int,
    n: int,
    conns: int,
    *,
    mark_window: int | None = None,
) -> Site:
    """A site with two posts and n subscribers; delivery.mark_window as given, else the default."""
    extra = {"delivery": {"mark_window": mark_window}} if mark_window is not None else None
    site = make_site(tmp_path / "site", database_url, port, max_connections=conns, extra=extra)
    site.add_post("Rust Tips", categories=["Engineering"])
    site.add_post("Book Fair", categories=["Culture"], days_ago=2)
    store = site.store()
    add_subscribers(store, people(n))
    store.dispose()
    return site
