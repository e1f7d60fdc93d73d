"""Config loading: ${VAR} expansion, typed settings, and one clear error per bad input."""

from __future__ import annotations

import json
import textwrap
from datetime import timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner

from digest.cli import cli
from digest.config import expand_env, load_settings
from digest.errors import BadInputError, ConfigError
from digest.settings.durations import parse_duration

GOOD = """\
site:
  title: Example Blog
  url: https://blog.example.com/
  baseurl: /news
  timezone: Europe/London
email:
  from: "Example Blog <news@example.com>"
smtp:
  password: ${SMTP_PASSWORD:-}
database:
  url: sqlite:///data/digest.db
digests:
  weekly:
    categories: [News]
    misfire_grace: 90m
"""


def write(tmp_path: Path, text: str, *, posts: bool = True) -> Path:
    if posts:
        (tmp_path / "_posts").mkdir(exist_ok=True)
    path = tmp_path / "config.yaml"
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def test_good_config_is_typed_and_resolved(tmp_path: Path) -> None:
    settings = load_settings(write(tmp_path, GOOD), environ={})
    assert settings.site.url == "https://blog.example.com"
    assert settings.site.root_url == "https://blog.example.com/news"
    assert settings.site.posts_dir == tmp_path / "_posts"
    assert settings.database.url == f"sqlite:///{tmp_path / 'data' / 'digest.db'}"
    assert settings.smtp.port == 587
    weekly = settings.digest("weekly")
    assert weekly.name == "weekly"
    assert weekly.categories == ("News",)
    assert weekly.misfire_grace == timedelta(minutes=90)
    assert settings.email.from_ == "Example Blog <news@example.com>"
    assert (settings.email.from_name, settings.email.from_address) == (
        "Example Blog",
        "news@example.com",
    )


@pytest.mark.parametrize(
    ("written", "name", "address"),
    [
        ("news@example.com", "", "news@example.com"),
        ('"Blog, Weekly" <News@EXAMPLE.com>', "Blog, Weekly", "news@example.com"),
        ("Zoë's Blog <zoe@bücher.example>", "Zoë's Blog", "zoe@bücher.example"),
    ],
)
def test_the_from_header_is_parsed_once_at_load(
    tmp_path: Path, written: str, name: str, address: str
) -> None:
    # A JSON string is a YAML double-quoted scalar.
    text = GOOD.replace('"Example Blog <news@example.com>"', json.dumps(written))
    settings = load_settings(write(tmp_path, text), environ={})
    assert settings.email.from_ == written
    assert (settings.email.from_name, settings.email.from_address) == (name, address)


def test_env_expansion_with_default_and_escape() -> None:
    env = {"HOST": "mail.example.com", "EMPTY": ""}
    data = {"a": "${HOST}", "b": "${MISSING:-fallback}", "c": "$${HOST}", "d": "${EMPTY:-x}"}
    assert expand_env(data, env) == {
        "a": "mail.example.com",
        "b": "fallback",
        "c": "${HOST}",
        "d": "x",
    }


def test_secrets_are_not_in_the_repr(tmp_path: Path) -> None:
    settings = load_settings(write(tmp_path, GOOD), environ={"SMTP_PASSWORD": "hunter2-secret"})
    assert settings.smtp.password.get_secret_value() == "hunter2-secret"
    assert "hunter2-secret" not in repr(settings)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("site: [unclosed\n", "not valid YAML (line 2"),
        (GOOD.replace("  title: Example Blog\n", ""), "site.title: required key is missing"),
        (GOOD.replace("  port", "  prot") + "smtp:\n  prot: 25\n", "unknown key"),
        (GOOD + "smtpp:\n  port: 25\n", "smtpp: unknown key"),
        (GOOD.replace("${SMTP_PASSWORD:-}", "${SMTP_PASSWORD}"), "environment variable"),
        (GOOD.replace("Europe/London", "Europe/Londn"), "site.timezone: unknown time zone"),
        (GOOD.replace("https://blog.example.com/", "blog.example.com"), "site.url: must be"),
        (GOOD.replace("misfire_grace: 90m", "misfire_grace: soon"), "misfire_grace"),
        (GOOD.replace("    categories: [News]", "    schedule: every monday"), "schedule"),
        (GOOD.replace("news@example.com", "not an address"), "email.from"),
    ],
)
def test_bad_config_names_file_and_key(tmp_path: Path, text: str, expected: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load_settings(path, environ={})
    assert str(path) in info.value.message
    assert expected in info.value.message
    assert info.value.exit_code == 2


BAD_SCHEDULES = [
    ("99 9 * * mon", "minute 99 is out of range 0-59"),
    ("0 9 * * 9", "day of week 9 is out of range 0-7"),
    ("0 9 * * funday", "day of week 'funday' is not a number or a name (sun..sat)"),
    ("0 0 30 2 *", "'0 0 30 2 *' never fires (no such date)"),
    ("every monday", "'every monday' has 2 fields; a crontab has 5"),
    ("@reboot", "'@reboot' has 1 fields; a crontab has 5"),
]


@pytest.mark.parametrize(("schedule", "reason"), BAD_SCHEDULES)
def test_a_bad_schedule_fails_at_load_naming_the_key(
    tmp_path: Path, schedule: str, reason: str
) -> None:
    path = write(tmp_path, GOOD + f'    schedule: "{schedule}"\n')
    with pytest.raises(ConfigError) as info:
        load_settings(path, environ={})
    assert info.value.exit_code == 2
    assert info.value.message.startswith(f"{path}: digests.weekly.schedule: {reason}")
    assert "\n" not in info.value.message


@pytest.mark.parametrize("schedule", ["0 9 * * mon", "@weekly", " @Daily ", "*/15 8-18 * * 1-5"])
def test_good_schedules_load(tmp_path: Path, schedule: str) -> None:
    settings = load_settings(write(tmp_path, GOOD + f'    schedule: "{schedule}"\n'), environ={})
    assert settings.digest("weekly").schedule.strip() == schedule.strip()


@pytest.mark.parametrize(
    "args",
    [
        ["posts"],
        ["posts", "--digest", "weekly"],
        ["preview", "weekly"],
        ["send", "weekly", "--dry-run"],
    ],
)
def test_a_bad_schedule_stops_every_command_with_exit_2(tmp_path: Path, args: list[str]) -> None:
    path = write(tmp_path, GOOD + '    schedule: "99 9 * * mon"\n')
    result = CliRunner().invoke(cli, ["--config", str(path), *args])
    assert result.exit_code == 2, result.output
    assert result.stderr == (
        f"error: {path}: digests.weekly.schedule: minute 99 is out of range 0-59\n"
    )
    assert result.stdout == ""


def test_missing_variable_names_the_variable_and_key(tmp_path: Path) -> None:
    path = write(tmp_path, GOOD.replace("${SMTP_PASSWORD:-}", "${SMTP_PASSWORD}"))
    with pytest.raises(ConfigError, match=r"smtp\.password: environment variable SMTP_PASSWORD"):
        load_settings(path, environ={})


def test_missing_posts_dir_is_named(tmp_path: Path) -> None:
    path = write(tmp_path, GOOD, posts=False)
    with pytest.raises(ConfigError, match=r"site\.posts_dir: folder .*_posts does not exist"):
        load_settings(path, environ={})


def test_missing_config_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="config file not found"):
        load_settings(tmp_path / "nope.yaml", environ={})


def test_jekyll_config_fills_site_keys(tmp_path: Path) -> None:
    (tmp_path / "_config.yml").write_text(
        "title: Jekyll Title\nurl: https://jekyll.example.org\ntimezone: Asia/Tokyo\n"
        "permalink: pretty\n",
        encoding="utf-8",
    )
    path = write(tmp_path, "site: {}\nemail:\n  from: a@example.com\n")
    settings = load_settings(path, environ={})
    assert settings.site.title == "Jekyll Title"
    assert settings.site.url == "https://jekyll.example.org"
    assert settings.site.timezone == "Asia/Tokyo"
    assert settings.site.permalink == "pretty"


def test_digest_config_wins_over_jekyll_config(tmp_path: Path) -> None:
    (tmp_path / "_config.yml").write_text("title: Jekyll Title\n", encoding="utf-8")
    settings = load_settings(write(tmp_path, GOOD), environ={})
    assert settings.site.title == "Example Blog"


def test_unknown_digest_lists_known(tmp_path: Path) -> None:
    settings = load_settings(write(tmp_path, GOOD), environ={})
    with pytest.raises(BadInputError) as info:
        settings.digest("monthly")
    assert "unknown digest 'monthly'" in str(info.value)
    assert "weekly" in str(info.value)


@pytest.mark.parametrize(
    ("value", "seconds"), [("6h", 21600), ("90m", 5400), ("1d12h", 129600), (30, 30), ("45", 45)]
)
def test_durations(value: object, seconds: int) -> None:
    assert parse_duration(value).total_seconds() == seconds


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("site: [unclosed\n", "not valid YAML"),
        (GOOD + "bogus: 1\n", "bogus: unknown key"),
        (GOOD.replace("${SMTP_PASSWORD:-}", "${SMTP_PASSWORD}"), "SMTP_PASSWORD"),
    ],
)
def test_cli_bad_config_exit_2_one_line(tmp_path: Path, text: str, expected: str) -> None:
    path = write(tmp_path, text)
    result = CliRunner().invoke(cli, ["--config", str(path), "posts"], env={"SMTP_PASSWORD": None})
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    lines = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(lines) == 1
    assert str(path) in lines[0]
    assert expected in lines[0]


def test_cli_missing_posts_dir_exit_2(tmp_path: Path) -> None:
    path = write(tmp_path, GOOD, posts=False)
    result = CliRunner().invoke(cli, ["--config", str(path), "posts"])
    assert result.exit_code == 2
    assert "site.posts_dir" in result.stderr
