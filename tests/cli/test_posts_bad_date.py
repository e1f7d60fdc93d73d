"""`digest posts --all`: a post whose date cannot be read is listed as bad-date, with one
warning naming the file and the value; never left out silently (Jekyll and Hugo)."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from digest.cli import cli

CONFIG = """
site:
  title: Blog
  url: https://blog.example.com
{extra}
email:
  from: "Blog <news@example.com>"
database:
  url: sqlite:///digest.db
digests:
  weekly: {{}}
"""


def _posts(config: Path, *args: str) -> tuple[list[dict[str, object]], list[str]]:
    result = CliRunner().invoke(cli, ["--config", str(config), "posts", "--all", *args])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout), result.stderr.splitlines()


def test_jekyll_post_with_an_unreadable_date(tmp_path: Path) -> None:
    posts = tmp_path / "_posts"
    posts.mkdir()
    (posts / "2025-11-25-bad.md").write_text(
        "---\ntitle: Bad\ndate: next tuesday\n---\nText.\n", encoding="utf-8"
    )
    (posts / "2025-11-26-good.md").write_text("---\ntitle: Good\n---\nText.\n", encoding="utf-8")
    config = tmp_path / "config.yaml"
    config.write_text(CONFIG.format(extra=""), encoding="utf-8")
    rows, warnings = _posts(config, "--format", "json")
    assert [(r["title"], r["status"]) for r in rows] == [("Good", "published"), ("Bad", "bad-date")]
    assert rows[1]["date"] is None
    (warning,) = warnings
    assert "2025-11-25-bad.md" in warning and "'next tuesday'" in warning


def test_hugo_page_with_an_unreadable_date(tmp_path: Path) -> None:
    site = tmp_path / "site"
    (site / "content" / "posts").mkdir(parents=True)
    (site / "hugo.toml").write_text('baseURL = "https://blog.example.com/"\n', encoding="utf-8")
    (site / "content" / "posts" / "good.md").write_text(
        "---\ntitle: Good\ndate: 2025-11-26\n---\nText.\n", encoding="utf-8"
    )
    (site / "content" / "posts" / "loose.md").write_text(
        '---\ntitle: Loose\ndate: "2014-10-16 17:59"\n---\nText.\n', encoding="utf-8"
    )
    config = tmp_path / "config.yaml"
    config.write_text(CONFIG.format(extra="  root: site"), encoding="utf-8")
    rows, warnings = _posts(config, "--format", "json")
    assert [(r["title"], r["status"]) for r in rows] == [
        ("Good", "published"),
        ("Loose", "bad-date"),
    ]
    assert rows[1]["url"] == "https://blog.example.com/posts/loose/"
    (warning,) = warnings
    assert "loose.md" in warning and "'2014-10-16 17:59'" in warning
    table = CliRunner().invoke(cli, ["--config", str(config), "posts", "--all"])
    assert "bad-date" in table.stdout and "Loose" in table.stdout
