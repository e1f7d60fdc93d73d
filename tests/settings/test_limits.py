"""Caps on what one subscriber may carry, and ${...} defaults that hold variables."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from digest.cli import cli
from digest.config import expand_env
from digest.errors import BadInputError, ConfigError
from digest.store import open_store
from digest.store.signups import queue_signup
from digest.store.subscribers import add_subscriber, find_subscriber
from tests.helpers.site_fixtures import make_site

FIFTY_ONE = [f"topic-{i}" for i in range(51)]


def _cli(tmp_path: Path, sqlite_url: str, *args: str, stdin: str | None = None) -> Result:
    """The CLI on an SQLite file: what it says is under test; the store's own limits run on both."""
    site = make_site(tmp_path / "site", sqlite_url, 25)
    return CliRunner().invoke(cli, ["--config", str(site.config_path), *args], input=stdin)


def test_add_refuses_more_than_50_categories(tmp_path: Path, migrated_sqlite_url: str) -> None:
    options = [arg for cat in FIFTY_ONE for arg in ("--category", cat)]
    result = _cli(tmp_path, migrated_sqlite_url, "subscribers", "add", "ana@example.com", *options)
    assert result.exit_code == 2, result.output
    assert result.output == "error: more than 50 categories for one subscriber\n"


def test_fifty_categories_of_100_characters_are_fine(migrated_database_url: str) -> None:
    store = open_store(migrated_database_url)
    try:
        cats = [f"{i:02d}" + "x" * 98 for i in range(50)]
        add_subscriber(store, "ana@example.com", categories=cats)
        found = find_subscriber(store, "ana@example.com")
        assert found is not None and list(found.categories) == cats
        with pytest.raises(BadInputError, match="longer than 100 characters"):
            add_subscriber(store, "ben@example.com", categories=["y" * 101])
        assert find_subscriber(store, "ben@example.com") is None
    finally:
        store.dispose()


def test_import_skips_a_row_with_15000_categories(tmp_path: Path, migrated_sqlite_url: str) -> None:
    many = ";".join(f"c{i}" for i in range(15_000))
    csv_text = f"email,categories\nana@example.com,{many}\nben@example.com,news\n"
    result = _cli(tmp_path, migrated_sqlite_url, "subscribers", "import", "-", stdin=csv_text)
    assert result.exit_code == 0, result.output
    assert "line 2: more than 50 categories for one subscriber" in result.output
    listed = _cli(tmp_path, migrated_sqlite_url, "subscribers", "list", "--format", "json")
    assert "ben@example.com" in listed.output
    assert "ana@example.com" not in listed.output


def test_a_web_sign_up_with_too_many_categories_is_refused_by_the_store(
    migrated_database_url: str,
) -> None:
    store = open_store(migrated_database_url)
    try:
        with pytest.raises(BadInputError, match="more than 50 categories"):
            queue_signup(store, "ana@example.com", client_key="k", categories=FIFTY_ONE)
        with pytest.raises(BadInputError, match="longer than 100 characters"):
            queue_signup(store, "ana@example.com", client_key="k", categories=["z" * 5000])
        assert find_subscriber(store, "ana@example.com") is None
    finally:
        store.dispose()


@pytest.mark.parametrize(
    ("text", "expanded"),
    [
        ("${A:-${B}}", "a"),
        ("${UNSET:-${B}}", "b"),
        ("${EMPTY:-${UNSET:-deep}}/x", "deep/x"),
        ("${UNSET:-${B}-${A}}", "b-a"),
        ("$${A:-${B}}", "${A:-${B}}"),
        ("${A}${B}", "ab"),
        ("${UNSET:-{braces}}", "{braces}"),
        ("${A", "${A"),
    ],
)
def test_nested_defaults_are_expanded(text: str, expanded: str) -> None:
    environ = {"A": "a", "B": "b", "EMPTY": ""}
    assert expand_env({"smtp": {"host": text}}, environ) == {"smtp": {"host": expanded}}


def test_a_missing_variable_inside_a_default_names_the_key() -> None:
    with pytest.raises(ConfigError) as info:
        expand_env({"smtp": {"host": "${UNSET:-${ALSO_UNSET}}"}}, {})
    assert info.value.message.startswith("smtp.host: environment variable ALSO_UNSET is not set")
