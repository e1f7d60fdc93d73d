"""`digest subscribers ...` and `digest db upgrade` through click's runner, on real SQLite files.

What the commands say and return is under test here; test_subscribers.py and test_migrations.py
run the same store calls on both databases.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import sqlalchemy as sa
from click.testing import CliRunner, Result

from digest.cli import cli
from digest.store.migrate import head_revision


def write_config(folder: Path, url: str) -> Path:
    """A minimal config.yaml in `folder` (empty _posts) pointing at the database `url`."""
    (folder / "_posts").mkdir()
    path = folder / "config.yaml"
    path.write_text(
        "site:\n"
        "  title: Test Blog\n"
        "  url: https://blog.example.com\n"
        "  posts_dir: _posts\n"
        "email:\n"
        '  from: "Test Blog <news@example.com>"\n'
        "database:\n"
        f'  url: "{url}"\n',
        encoding="utf-8",
    )
    return path


@pytest.fixture
def config(tmp_path: Path, migrated_sqlite_url: str) -> Path:
    """The config of a database that has the schema."""
    return write_config(tmp_path, migrated_sqlite_url)


@pytest.fixture
def empty_config(tmp_path: Path, sqlite_url: str) -> Path:
    """The config of a database file that does not exist yet."""
    return write_config(tmp_path, sqlite_url)


def run(config: Path, *args: str, input: str | None = None) -> Result:
    return CliRunner().invoke(cli, ["--config", str(config), *args], input=input)


def listed(config: Path, *args: str) -> list[dict[str, object]]:
    result = run(config, "subscribers", "list", "--format", "json", *args)
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert isinstance(data, list)
    return data


def test_schema_is_created_on_first_use(empty_config: Path, sqlite_url: str) -> None:
    result = run(empty_config, "subscribers", "list")
    assert result.exit_code == 0, result.output
    assert result.stdout == "no subscribers\n"
    engine = sa.create_engine(sqlite_url)
    try:
        assert "subscribers" in sa.inspect(engine).get_table_names()
    finally:
        engine.dispose()


def test_db_upgrade_is_idempotent(empty_config: Path) -> None:
    first = run(empty_config, "db", "upgrade")
    assert first.exit_code == 0, first.output
    assert f"upgraded from empty to revision {head_revision()}" in first.stdout
    second = run(empty_config, "db", "upgrade")
    assert second.exit_code == 0, second.output
    assert f"already at revision {head_revision()} (newest)" in second.stdout


def test_db_upgrade_on_an_unreachable_database_exits_1(tmp_path: Path) -> None:
    (tmp_path / "_posts").mkdir()
    config = tmp_path / "config.yaml"
    config.write_text(
        "site: {title: T, url: 'https://b.example.com', posts_dir: _posts}\n"
        "email: {from: 'n@example.com'}\n"
        "database: {url: 'sqlite:///no/such/folder/digest.db'}\n",
        encoding="utf-8",
    )
    result = run(config, "db", "upgrade")
    assert result.exit_code == 1
    assert result.stderr.startswith("error: database sqlite:///")
    assert "no/such/folder/digest.db" in result.stderr
    assert "Traceback" not in result.output


def test_add_update_and_keep_status(config: Path) -> None:
    result = run(
        config, "subscribers", "add", "Ann@Example.com", "--name", "Ann", "--category", "News"
    )
    assert (result.exit_code, result.stdout) == (0, "added Ann@example.com (active)\n")
    result = run(config, "subscribers", "add", "ANN@example.com", "--category", "Tech")
    assert (result.exit_code, result.stdout) == (0, "updated Ann@example.com (active)\n")
    [ann] = listed(config)
    assert (ann["email"], ann["name"], ann["categories"]) == ("Ann@example.com", "Ann", ["Tech"])

    assert run(config, "subscribers", "unsubscribe", "ann@example.com").exit_code == 0
    result = run(config, "subscribers", "add", "ann@example.com", "--name", "Annie")
    assert result.exit_code == 0
    assert result.stdout == "updated Ann@example.com; status stays unsubscribed\n"
    assert "--resubscribe" in result.stderr
    [ann] = listed(config)
    assert (ann["name"], ann["status"]) == ("Annie", "unsubscribed")

    result = run(config, "subscribers", "add", "ann@example.com", "--resubscribe")
    assert (result.exit_code, result.stdout) == (0, "updated Ann@example.com (active)\n")
    result = run(config, "subscribers", "add", "ann@example.com", "--all-categories")
    assert result.exit_code == 0
    assert listed(config)[0]["categories"] == []


def test_an_invalid_address_exits_2_and_writes_nothing(config: Path) -> None:
    result = run(config, "subscribers", "add", "ann@@example.com", "--name", "Ann")
    assert result.exit_code == 2
    assert result.stderr.startswith("error: 'ann@@example.com' is not a valid email address")
    assert "Traceback" not in result.output
    assert listed(config) == []


def test_a_name_with_cr_lf_exits_2(config: Path) -> None:
    result = run(config, "subscribers", "add", "ann@example.com", "--name", "Ann\r\nBcc: x")
    assert result.exit_code == 2
    assert "error: name 'Ann\\r\\nBcc: x' contains a control character" in result.stderr
    assert listed(config) == []


@pytest.mark.parametrize("command", ["remove", "unsubscribe"])
def test_an_unknown_address_exits_2(config: Path, command: str) -> None:
    result = run(config, "subscribers", command, "nobody@example.com")
    assert result.exit_code == 2
    assert result.stderr == "error: no subscriber 'nobody@example.com'\n"


def test_remove_and_unsubscribe(config: Path) -> None:
    run(config, "subscribers", "add", "ann@example.com")
    run(config, "subscribers", "add", "bob@example.com")
    result = run(config, "subscribers", "unsubscribe", "BOB@example.com")
    assert (result.exit_code, result.stdout) == (0, "unsubscribed bob@example.com\n")
    result = run(config, "subscribers", "remove", "ann@example.com")
    assert (result.exit_code, result.stdout) == (
        0,
        "removed ann@example.com and their personal data\n",
    )
    assert [(s["email"], s["status"]) for s in listed(config)] == [
        ("bob@example.com", "unsubscribed")
    ]


def test_list_formats(config: Path) -> None:
    run(config, "subscribers", "add", "ann@example.com", "--name", "Ann", "--category", "News")
    run(
        config,
        "subscribers",
        "add",
        "robert.long@example.com",
        "--category",
        "a",
        "--category",
        "b",
    )
    run(config, "subscribers", "unsubscribe", "robert.long@example.com")

    data = listed(config)
    assert [s["email"] for s in data] == ["ann@example.com", "robert.long@example.com"]
    assert data[0]["categories"] == ["News"]
    created = str(data[0]["created_at"])
    assert created.endswith("+00:00") and "T" in created
    assert [s["email"] for s in listed(config, "--status", "unsubscribed")] == [
        "robert.long@example.com"
    ]

    table = run(config, "subscribers", "list").stdout.splitlines()
    assert table[0].split() == [
        "EMAIL", "NAME", "STATUS", "DIGESTS", "CATEGORIES", "CREATED", "(UTC)", "SINCE", "(UTC)",
        "WHY",
    ]  # fmt: skip
    # Columns line up: each status starts under the STATUS heading.
    col = table[0].index("STATUS")
    assert table[1][col:].startswith("active ")
    assert table[2][col:].startswith("unsubscribed ")
    # Every digest, categories News: "(all)" once, under DIGESTS.
    assert "a, b" in table[2] and table[1].count("(all)") == 1
    assert table[1].index("(all)") == table[0].index("DIGESTS")
    # Why and when someone left; nothing for an active subscriber.
    since, why = table[0].index("SINCE"), table[0].index("WHY")
    assert table[1][since:].strip() == ""
    assert table[2][since:why].strip() == data[1]["status_changed_at"][:16].replace("T", " ")
    assert table[2][why:] == "cli"
    assert table[-1] == "2 subscribers"

    csv_out = run(config, "subscribers", "list", "--format", "csv", "--status", "active").stdout
    lines = csv_out.splitlines()
    assert lines[0] == "email,name,categories,status,created_at"
    assert lines[1].startswith("ann@example.com,Ann,News,active,")
    assert len(lines) == 2

    bad = run(config, "subscribers", "list", "--status", "gone")
    assert bad.exit_code == 2


def test_import_reports_bad_rows_and_keeps_good_ones(config: Path, tmp_path: Path) -> None:
    path = tmp_path / "people.csv"
    path.write_text(
        "email,name,categories\n"
        "ann@example.com,Ann,news;tech\n"
        "not-an-address,X,\n"
        'carl@example.com,"Carl\r\nBcc: x",\n'
        "bob@example.com,,\n",
        encoding="utf-8",
    )
    result = run(config, "subscribers", "import", str(path))
    assert result.exit_code == 0, result.output
    assert result.stdout == "imported: 2 added, 0 updated, 0 unchanged, 2 skipped\n"
    errors = result.stderr.splitlines()
    assert errors[0].startswith("line 3: 'not-an-address' is not a valid email address")
    assert errors[1].startswith("line 4: name 'Carl\\r\\nBcc: x' contains a control character")
    assert [s["email"] for s in listed(config)] == ["ann@example.com", "bob@example.com"]

    again = run(config, "subscribers", "import", str(path))
    assert again.stdout == "imported: 0 added, 0 updated, 2 unchanged, 2 skipped\n"


def test_import_without_email_column_or_file_exits_2(config: Path, tmp_path: Path) -> None:
    path = tmp_path / "people.csv"
    path.write_text("name\nAnn\n", encoding="utf-8")
    result = run(config, "subscribers", "import", str(path))
    assert result.exit_code == 2
    assert result.stderr.startswith(f"error: {path}: no 'email' column in the header row\n")
    missing = run(config, "subscribers", "import", str(tmp_path / "missing.csv"))
    assert missing.exit_code == 2
    assert "missing.csv: cannot read" in missing.stderr


def test_import_from_stdin(config: Path) -> None:
    result = run(config, "subscribers", "import", "-", input="email\nann@example.com\n")
    assert result.exit_code == 0, result.output
    assert result.stdout == "imported: 1 added, 0 updated, 0 unchanged, 0 skipped\n"


def test_export_round_trip(config: Path, tmp_path: Path) -> None:
    run(config, "subscribers", "add", "ann@example.com", "--name", "Ann, A.", "--category", "x")
    run(config, "subscribers", "add", "bob@example.com", "--category", "a", "--category", "b")
    out = tmp_path / "export.csv"
    result = run(config, "subscribers", "export", "--out", str(out))
    assert (result.exit_code, result.stdout) == (0, f"exported 2 subscribers to {out}\n")
    text = out.read_text(encoding="utf-8")
    assert text == run(config, "subscribers", "export").stdout
    assert text.splitlines()[0] == "email,name,categories,status,created_at"  # CONTRACT's
    assert text.splitlines()[1].startswith('ann@example.com,"Ann, A.",x,active,')
    assert text.splitlines()[2].startswith("bob@example.com,,a;b,active,")

    run(config, "subscribers", "remove", "ann@example.com")
    run(config, "subscribers", "remove", "bob@example.com")
    result = run(config, "subscribers", "import", str(out))
    assert result.stdout == "imported: 2 added, 0 updated, 0 unchanged, 0 skipped\n"
    assert [(s["email"], s["name"], s["categories"]) for s in listed(config)] == [
        ("ann@example.com", "Ann, A.", ["x"]),
        ("bob@example.com", "", ["a", "b"]),
    ]


def test_export_then_import_keeps_each_subscribers_digests(config: Path, tmp_path: Path) -> None:
    with config.open("a", encoding="utf-8") as handle:
        handle.write("digests:\n  weekly: {lookback_days: 7}\n  daily: {lookback_days: 1}\n")
    run(config, "subscribers", "add", "ann@example.com")
    run(config, "subscribers", "add", "bob@example.com", "--digest", "daily")
    out = tmp_path / "export.csv"
    assert run(config, "subscribers", "export", "--out", str(out), "--with-digests").exit_code == 0
    rows = out.read_text(encoding="utf-8").splitlines()
    assert rows[0] == "email,name,categories,status,created_at,digests"
    assert rows[1].startswith("ann@example.com,,,active,") and rows[1].endswith(",*")
    assert rows[2].startswith("bob@example.com,,,active,") and rows[2].endswith(",daily")

    for email in ("ann@example.com", "bob@example.com"):
        run(config, "subscribers", "remove", email)
    result = run(config, "subscribers", "import", str(out))
    assert result.stdout == "imported: 2 added, 0 updated, 0 unchanged, 0 skipped\n"
    assert [(s["email"], s["digests"], s["all_digests"]) for s in listed(config)] == [
        ("ann@example.com", ["daily", "weekly"], True),
        ("bob@example.com", ["daily"], False),
    ]

    typo = tmp_path / "typo.csv"
    typo.write_text("email,digests\ncy@example.com,weekly;dialy\n", encoding="utf-8")
    result = run(config, "subscribers", "import", str(typo))
    assert result.exit_code == 0
    assert result.stderr == ("line 2: no digest 'dialy' in the config (digests: weekly, daily)\n")


def test_export_to_an_unwritable_place_exits_2(config: Path, tmp_path: Path) -> None:
    result = run(config, "subscribers", "export", "--out", str(tmp_path / "no" / "x.csv"))
    assert result.exit_code == 2
    assert "x.csv: cannot write" in result.stderr
