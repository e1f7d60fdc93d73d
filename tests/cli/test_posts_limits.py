"""`digest posts` on a site whose post has a runaway Liquid loop: it ends, with one warning."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.helpers.site_fixtures import make_site


def test_a_runaway_liquid_loop_ends_within_seconds_with_one_warning(tmp_path: Path) -> None:
    site = make_site(tmp_path / "site", f"sqlite:///{tmp_path / 'd.db'}", 25)
    site.add_post("Runaway", body="Hi {% for i in (1..1000000000) %}x{% endfor %} there.")
    site.add_post(
        "Doubling",
        body="{% assign s = 'ab' %}{% for i in (1..60) %}"
        "{% assign s = s | append: s %}{% endfor %}{{ s }}",
    )
    site.add_post("Fine", body="Nothing odd.")
    # The command's own time: a hung render is a failed test, not a hung suite.
    done = subprocess.run(
        [sys.executable, "-m", "digest", "--config", str(site.config_path), "posts", "--all"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=site.root,
    )
    assert done.returncode == 0, done.stderr
    warnings = sorted(done.stderr.splitlines())
    assert len(warnings) == 2, done.stderr  # one warning for each runaway post, no more
    assert "doubling.md: Liquid stopped at a limit: local namespace limit" in warnings[0]
    assert "runaway.md: Liquid stopped at a limit: loop iteration limit" in warnings[1]
    assert done.stdout.count("\n    https://") == 3  # every post is listed
