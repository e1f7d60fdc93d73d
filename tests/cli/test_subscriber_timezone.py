"""A subscriber's time zone: `subscribers add --timezone`, the CSV `timezone` column, list json."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner, Result

from digest.cli import cli


def config(tmp_path: Path, url: str) -> Path:
    (tmp_path / "_posts").mkdir()
    path = tmp_path / "config.yaml"
    path.write_text(
        "site:\n  title: Test Blog\n  url: https://blog.example.com\n"
        'email:\n  from: "Test Blog <news@example.com>"\n'
        f'database:\n  url: "{url}"\n',
        encoding="utf-8",
    )
    return path


def run(path: Path, *args: str) -> Result:
    return CliRunner().invoke(cli, ["--config", str(path), *args])


def zones(path: Path) -> dict[str, object]:
    result = run(path, "subscribers", "list", "--format", "json")
    assert result.exit_code == 0, result.output
    return {row["email"]: row["timezone"] for row in json.loads(result.stdout)}


def test_add_import_and_list_keep_the_time_zone(tmp_path: Path, migrated_sqlite_url: str) -> None:
    path = config(tmp_path, migrated_sqlite_url)
    assert (
        run(path, "subscribers", "add", "ken@example.jp", "--timezone", "Asia/Tokyo").exit_code == 0
    )
    assert run(path, "subscribers", "add", "ann@example.com").exit_code == 0
    bad = run(path, "subscribers", "add", "bob@example.com", "--timezone", "Mars/Olympus")
    assert bad.exit_code == 2
    assert bad.stderr.strip() == (
        "error: unknown time zone 'Mars/Olympus' "
        "(an IANA name like Europe/London or America/New_York)"
    )
    csv = tmp_path / "people.csv"
    csv.write_text(
        "email,name,timezone\n"
        "ann@example.com,Ann,America/New_York\n"
        "ken@example.jp,Ken,\n"
        "zed@example.com,Zed,Nowhere/Land\n",
        encoding="utf-8",
    )
    result = run(path, "subscribers", "import", str(csv))
    assert result.exit_code == 0, result.output
    assert "line 4" in result.output and "Nowhere/Land" in result.output
    assert zones(path) == {"ken@example.jp": "Asia/Tokyo", "ann@example.com": "America/New_York"}
    assert run(path, "subscribers", "add", "ken@example.jp", "--timezone", "").exit_code == 0
    assert zones(path)["ken@example.jp"] is None


def test_export_with_timezone_round_trips(tmp_path: Path, migrated_sqlite_url: str) -> None:
    path = config(tmp_path, migrated_sqlite_url)
    assert (
        run(path, "subscribers", "add", "ken@example.jp", "--timezone", "Asia/Tokyo").exit_code == 0
    )
    assert run(path, "subscribers", "add", "ann@example.com").exit_code == 0
    result = run(path, "subscribers", "export", "--with-timezone")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0] == "email,name,categories,status,created_at,timezone"
    assert lines[1].endswith(",Asia/Tokyo") and lines[2].endswith(",")
    plain = run(path, "subscribers", "export").stdout.splitlines()[0]
    assert "timezone" not in plain
    # Read back into another database: the zone comes with it.
    other = tmp_path / "other"
    other.mkdir()
    second = config(other, f"sqlite:///{other / 'digest.db'}")
    (other / "people.csv").write_text(result.stdout, encoding="utf-8")
    assert run(second, "subscribers", "import", str(other / "people.csv")).exit_code == 0
    assert zones(second) == {"ken@example.jp": "Asia/Tokyo", "ann@example.com": None}
