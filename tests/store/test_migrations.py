"""The Alembic migrations: they build exactly the models' schema, once, even when raced."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from digest.errors import DatabaseError
from digest.store import open_store
from digest.store.migrate import MIGRATIONS_DIR, current_revision, head_revision, upgrade_schema
from digest.store.migrate import _config as migrate_config
from digest.store.models import Base
from digest.store.subscribers import list_subscribers


def _diffs(engine: sa.Engine, metadata: sa.MetaData) -> list[Any]:
    with engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        return list(compare_metadata(context, metadata))


def test_migration_builds_exactly_the_models_schema(database_url: str) -> None:
    store = open_store(database_url)
    try:
        assert _diffs(store.engine, Base.metadata) == []
        assert current_revision(store) == head_revision()
    finally:
        store.dispose()


def test_schema_comparison_sees_a_missing_column(database_url: str) -> None:
    store = open_store(database_url)
    try:
        changed = sa.MetaData(naming_convention=Base.metadata.naming_convention)
        for table in Base.metadata.tables.values():
            table.to_metadata(changed)
        changed.tables["subscribers"].append_column(sa.Column("nickname", sa.String(40)))
        diffs = _diffs(store.engine, changed)
        assert [d[0] for d in diffs] == ["add_column"]
        assert diffs[0][3].name == "nickname"
    finally:
        store.dispose()


def test_upgrade_at_head_runs_no_ddl(database_url: str) -> None:
    store = open_store(database_url)
    statements: list[str] = []
    sa.event.listen(
        store.engine,
        "before_cursor_execute",
        lambda _c, _cur, stmt, *_a: statements.append(stmt),
    )
    try:
        assert upgrade_schema(store) == head_revision()
        assert upgrade_schema(store) == head_revision()
    finally:
        store.dispose()
    assert statements, "the revision check must reach the database"
    assert not [s for s in statements if s.lstrip().upper().startswith(("CREATE", "ALTER"))]


def test_open_store_without_upgrade_leaves_the_database_empty(database_url: str) -> None:
    store = open_store(database_url, upgrade=False)
    try:
        assert current_revision(store) is None
        assert sa.inspect(store.engine).get_table_names() == []
        assert upgrade_schema(store) == head_revision()
        assert "subscribers" in sa.inspect(store.engine).get_table_names()
    finally:
        store.dispose()


_RACER = """
import sys
from digest.store import open_store
from digest.store.subscribers import add_subscriber
store = open_store(sys.argv[1])
add_subscriber(store, f"racer{sys.argv[2]}@example.com")
store.dispose()
"""


def test_concurrent_first_use_does_not_crash(database_url: str) -> None:
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", _RACER, database_url, str(i)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in range(5)
    ]
    results = [(p.wait(timeout=120), p.stderr.read() if p.stderr else "") for p in procs]
    for p in procs:
        for stream in (p.stdout, p.stderr):
            if stream:
                stream.close()
    assert [code for code, _ in results] == [0] * 5, results
    store = open_store(database_url)
    try:
        with store.session() as session:
            count = session.scalar(sa.text("SELECT count(*) FROM subscribers"))
            versions = session.scalars(sa.text("SELECT version_num FROM alembic_version")).all()
        assert count == 5
        assert versions == [head_revision()]
    finally:
        store.dispose()


def test_unreachable_sqlite_file_names_the_url(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'missing-folder' / 'digest.db'}"
    with pytest.raises(DatabaseError) as info:
        open_store(url)
    assert "missing-folder/digest.db" in str(info.value)
    assert info.value.exit_code == 1


def test_unreachable_postgresql_masks_the_password() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    # Nothing listens on the port once the socket is closed.
    url = f"postgresql://digest:s3cretpw@127.0.0.1:{port}/digest"
    with pytest.raises(DatabaseError) as info:
        open_store(url)
    message = str(info.value)
    assert f"127.0.0.1:{port}/digest" in message
    assert "digest:***@" in message
    assert "s3cretpw" not in message


def test_a_newer_schema_is_refused(database_url: str) -> None:
    store = open_store(database_url)
    try:
        with store.session() as session:
            session.execute(sa.text("UPDATE alembic_version SET version_num = '9999'"))
        with pytest.raises(DatabaseError, match="revision 9999"):
            upgrade_schema(store)
    finally:
        store.dispose()


def test_migrations_ship_inside_the_package() -> None:
    assert MIGRATIONS_DIR.parent.name == "store"
    assert (MIGRATIONS_DIR / "env.py").is_file()
    assert (MIGRATIONS_DIR / "script.py.mako").is_file()
    assert (MIGRATIONS_DIR / "versions" / "0001_initial.py").is_file()


def test_tables_made_before_the_migrations_are_adopted(database_url: str) -> None:
    store = open_store(database_url, upgrade=False)
    try:
        Base.metadata.create_all(store.engine)
        assert upgrade_schema(store) == head_revision()
        assert current_revision(store) == head_revision()
    finally:
        store.dispose()


def test_foreign_tables_without_revision_are_refused(database_url: str) -> None:
    store = open_store(database_url, upgrade=False)
    try:
        with store.session() as session:
            session.execute(sa.text("CREATE TABLE subscribers (id INTEGER PRIMARY KEY)"))
        with pytest.raises(DatabaseError, match="no schema revision"):
            upgrade_schema(store)
        assert current_revision(store) is None
    finally:
        store.dispose()


def test_a_missing_postgresql_schema_is_one_clear_error() -> None:
    base = os.environ.get("DIGEST_TEST_POSTGRES_URL")
    if not base:
        pytest.skip("DIGEST_TEST_POSTGRES_URL is not set")
    sep = "&" if "?" in base else "?"
    url = f"{base}{sep}options=-csearch_path%3Dno_such_schema_here"
    with pytest.raises(DatabaseError, match="cannot create or migrate the schema") as info:
        open_store(url)
    assert info.value.exit_code == 1


def test_a_database_from_before_the_bounce_tables_upgrades_with_its_data(
    database_url: str,
) -> None:
    store = open_store(database_url, upgrade=False)
    try:
        with store.engine.connect() as conn, conn.begin():
            command.upgrade(migrate_config(conn), "0004")
            # The row as that schema holds it (the ORM models are ahead of it).
            table = sa.Table("subscribers", sa.MetaData(), autoload_with=conn)
            now = datetime.now(UTC)
            if conn.dialect.name == "sqlite":  # stored naive, as UTCDateTime does
                now = now.replace(tzinfo=None)
            conn.execute(
                table.insert().values(
                    email="kept@example.com",
                    email_key="kept@example.com",
                    name="",
                    categories=[],
                    status="active",
                    status_changed_at=now,
                    created_at=now,
                    updated_at=now,
                    link_key="k" * 22,
                    legacy_links=False,
                    all_digests=True,
                )
            )
        assert "bounce_events" not in sa.inspect(store.engine).get_table_names()
        assert upgrade_schema(store) == head_revision()
        assert {"bounce_events", "processed_reports"} <= set(
            sa.inspect(store.engine).get_table_names()
        )
        assert _diffs(store.engine, Base.metadata) == []
        assert [row.email for row in list_subscribers(store)] == ["kept@example.com"]
    finally:
        store.dispose()


def test_the_head_known_without_alembic_is_alembics_head() -> None:
    from alembic.script import ScriptDirectory

    script = ScriptDirectory.from_config(migrate_config())
    assert head_revision() == script.get_current_head()
    for revision in script.walk_revisions():  # each file is named after its revision
        assert Path(revision.path).name.startswith(f"{revision.revision}_"), revision.path


def test_a_current_database_opens_without_importing_alembic(migrated_database_url: str) -> None:
    code = (
        "import sys; from digest.store import open_store; "
        f"open_store({migrated_database_url!r}).dispose(); "
        "print(sorted(m for m in sys.modules if m.split('.')[0] == 'alembic'))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert done.stdout.strip() == "[]", done.stdout
