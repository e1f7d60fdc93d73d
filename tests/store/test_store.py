"""The store core: schema on first use, masked URLs, aware UTC datetimes on both databases."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
import sqlalchemy as sa

from digest.store import masked_url, open_store
from digest.store.migrate import current_revision, head_revision
from digest.store.models import Base, Lease
from digest.store.subscribers import add_subscriber


def test_the_schema_is_created_on_first_use(database_url: str) -> None:
    store = open_store(database_url)
    try:
        tables = set(sa.inspect(store.engine).get_table_names())
    finally:
        store.dispose()
    assert tables == set(Base.metadata.tables) | {"alembic_version"}


@pytest.mark.parametrize("turn", [1, 2])
def test_a_migrated_test_database_has_the_schema_and_nothing_else(
    migrated_database_url: str, turn: int
) -> None:
    """The fixture hands each test a migrated database with no rows and fresh ids, even when it
    reuses one (PostgreSQL): this test's second turn must not see the first turn's subscriber."""
    store = open_store(migrated_database_url, upgrade=False)
    try:
        assert current_revision(store) == head_revision()
        with store.session() as session:
            for table in Base.metadata.sorted_tables:
                count = session.scalar(sa.select(sa.func.count()).select_from(table))
                assert count == 0, f"{table.name} has {count} rows"
        row, _ = add_subscriber(store, f"turn{turn}@example.com")
        assert row.id == 1
    finally:
        store.dispose()


def test_open_store_twice_keeps_the_data(database_url: str) -> None:
    first = open_store(database_url)
    try:
        with first.session() as session:
            session.add(Lease(name="x", holder="me", expires_at=datetime.now(UTC)))
    finally:
        first.dispose()
    second = open_store(database_url)
    try:
        with second.session() as session:
            assert session.scalars(sa.select(Lease.holder)).all() == ["me"]
    finally:
        second.dispose()


def test_datetimes_come_back_aware_in_utc(database_url: str) -> None:
    store = open_store(database_url)
    local = datetime(2025, 11, 27, 9, 30, tzinfo=timezone(timedelta(hours=2)))
    try:
        with store.write_transaction() as session:
            session.add(Lease(name="x", holder="me", expires_at=local))
        with store.session() as session:
            got = session.scalars(sa.select(Lease.expires_at)).one()
        assert got == local and got.tzinfo is not None
        assert got.utcoffset() == timedelta(0)
        with pytest.raises(sa.exc.StatementError, match="naive datetime"), store.session() as s:
            s.add(Lease(name="y", holder="me", expires_at=datetime(2025, 1, 1)))
    finally:
        store.dispose()


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        (
            "postgresql://digest:pa:ss@db.example:5432/d",
            "postgresql://digest:***@db.example:5432/d",
        ),
        ("postgresql://digest@db.example/d", "postgresql://digest@db.example/d"),
        ("sqlite:////srv/digest.db", "sqlite:////srv/digest.db"),
    ],
)
def test_masked_url_hides_the_password(url: str, shown: str) -> None:
    assert masked_url(url) == shown


@pytest.mark.parametrize("url", ["mysql://db.example.com/blog", "nosuchdb://x/y"])
def test_an_unusable_database_url_is_a_config_error(url: str) -> None:
    from digest.errors import ConfigError

    with pytest.raises(ConfigError, match=r"database\.url .*not a usable database URL") as info:
        open_store(url)
    assert info.value.exit_code == 2


def test_an_unreachable_database_names_it_without_the_password() -> None:
    from digest.errors import DatabaseError

    with pytest.raises(DatabaseError) as info:
        open_store("postgresql://digest:s3cret-pass@127.0.0.1:9/digest")
    assert "127.0.0.1:9" in info.value.message
    assert "s3cret-pass" not in info.value.message
    assert info.value.exit_code == 1
