"""What a newcomer tripped on, at the command line: help texts, `send` without a NAME, the
schedule's columns, a stopped run's summary, a site title from the site's own config."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from click.testing import CliRunner

from digest.cli import cli
from digest.cli.send_cmds import _summary
from digest.config import load_settings
from digest.delivery.sending import RunReport

CONFIG = (
    "site:\n  url: https://blog.example.com\n  posts_dir: _posts\n"
    'email:\n  from: "Blog <news@example.com>"\n'
    "digests:\n  weekly: {}\n  a-much-longer-name:\n    schedule: '0 7 * * *'\n"
)


def site(tmp_path: Path, *, title: bool = True) -> Path:
    (tmp_path / "_posts").mkdir()
    config = tmp_path / "config.yaml"
    text = CONFIG.replace("site:\n", "site:\n  title: Blog\n", 1) if title else CONFIG
    config.write_text(text, encoding="utf-8")
    return config


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, list(args))
    return result.exit_code, result.stdout, result.stderr


def test_the_help_names_hugo_and_feeds_and_serve_names_every_page(tmp_path: Path) -> None:
    code, out, _ = run("--help")
    assert code == 0 and "for Jekyll and Hugo blogs and RSS/Atom/JSON feeds" in out
    code, out, _ = run("serve", "--help")
    assert code == 0
    for path in (
        "/subscribe",
        "/confirm/",
        "/preferences/",
        "/unsubscribe/",
        "/archive",
        "/webhooks/",
        "/healthz",
    ):
        assert path in out, path


def test_send_without_a_name_lists_the_digests(tmp_path: Path) -> None:
    config = site(tmp_path)
    code, _, err = run("--config", str(config), "send")
    assert code == 2
    assert "which digest? give its NAME (digests: weekly, a-much-longer-name)" in err


def test_schedule_dry_run_lines_up_its_columns(tmp_path: Path) -> None:
    config = site(tmp_path)
    code, out, _ = run("--config", str(config), "schedule", "--dry-run")
    assert code == 0, out
    lines = out.splitlines()
    assert len(lines) == 2
    # The fire time and the schedule start in the same column on every line.
    assert len({line.index("20") for line in lines}) == 1
    assert len({line.index("(") for line in lines}) == 1


def test_a_resumed_run_with_messages_left_is_not_called_finished() -> None:
    when = datetime(2026, 11, 27, 9, tzinfo=UTC)
    stopped = RunReport(1, "weekly", when, 3, sent=48, pending=452, resumed=True)
    (line, *rest) = _summary(stopped, UTC)  # type: ignore[arg-type]
    assert "finished" not in line
    assert line.startswith("weekly: run 1 as of 2026-11-27T09:00:00+00:00: 3 posts, 48 sent")
    assert "452 deliveries of run 1 are still pending" in rest[-1]
    done = RunReport(1, "weekly", when, 3, sent=500, resumed=True, status="finished")
    assert _summary(done, UTC)[0].startswith("weekly: finished run 1")  # type: ignore[arg-type]


def test_site_title_comes_from_jekylls_name_when_the_config_has_none(tmp_path: Path) -> None:
    config = site(tmp_path, title=False)
    (tmp_path / "_config.yml").write_text("name: Kramdown Notes\n", encoding="utf-8")
    assert load_settings(config).site.title == "Kramdown Notes"
    (tmp_path / "_config.yml").write_text("name: Old\ntitle: Proper Title\n", encoding="utf-8")
    assert load_settings(config).site.title == "Proper Title"
