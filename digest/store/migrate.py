"""Create or migrate the schema with the Alembic migrations shipped in digest/store/migrations.

open_store() calls upgrade_schema() on every command start: when the database is current that
is one plain `SELECT` of alembic_version against the newest migration file's revision, and
Alembic (~0.3 s to import) is not imported at all.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqlalchemy import exc, inspect, text
from sqlalchemy.engine import Connection

from digest.errors import DatabaseError
from digest.store.db_errors import database_error, db_errors, masked_url
from digest.store.models import Base
from digest.store.peek import MIGRATIONS_DIR, head_revision

if TYPE_CHECKING:
    from alembic.config import Config

    from digest.store import Store

# Any constant will do: it only has to be the same in every digest process.
_PG_LOCK_KEY = 0x64696765  # "dige"


def _config(connection: Connection | None = None) -> Config:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    if connection is not None:
        config.attributes["connection"] = connection
    return config


def _known_revisions() -> set[str]:
    from alembic.script import ScriptDirectory

    script = ScriptDirectory.from_config(_config())
    return {rev.revision for rev in script.walk_revisions()}


def _revision(connection: Connection) -> str | None:
    from alembic.runtime.migration import MigrationContext

    return MigrationContext.configure(connection).get_current_revision()


def _stamped(store: Store) -> str | None:
    """The revision alembic_version holds, by one plain SELECT; None when it cannot tell (no
    table yet, several rows): then Alembic looks."""
    with store.engine.connect() as connection:
        try:
            rows = connection.exec_driver_sql("SELECT version_num FROM alembic_version").all()
        except (exc.ProgrammingError, exc.OperationalError):
            return None
    return str(rows[0][0]) if len(rows) == 1 else None


def _has_digest_tables(connection: Connection) -> bool:
    return bool(set(inspect(connection).get_table_names()) & set(Base.metadata.tables))


def _adopt(connection: Connection, store: Store) -> None:
    """Tables made by create_all before the migrations existed: stamp them if they match."""
    from alembic import command
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext

    context = MigrationContext.configure(connection, opts={"compare_type": True})
    diffs = compare_metadata(context, Base.metadata)
    if diffs:
        raise DatabaseError(
            f"database {masked_url(store.url)} has digest tables but no schema revision, "
            f"and they differ from this version's schema ({len(diffs)} differences)",
            hint="move the old database aside and let digest create a new one",
        )
    command.stamp(_config(connection), "head")


def current_revision(store: Store) -> str | None:
    """The revision the database is at (None for an empty database)."""
    with db_errors(store.url), store.engine.connect() as connection:
        return _revision(connection)


def upgrade_schema(store: Store) -> str:
    """Bring the schema to the newest revision (a no-op when it is there); return that revision.

    Two processes starting on a fresh database at once must not both create the tables: the
    upgrade runs under the SQLite write lock (BEGIN IMMEDIATE) or a PostgreSQL advisory lock,
    and re-checks the revision once it holds the lock.
    """
    head = head_revision()
    try:
        with db_errors(store.url):
            return _upgrade(store, head)
    except exc.DBAPIError as error:
        # Reachable but unusable: a missing schema in search_path, no CREATE privilege...
        raise database_error(store.url, error, "cannot create or migrate the schema: ") from error


def _upgrade(store: Store, head: str) -> str:
    if _stamped(store) == head:
        return head
    with store.engine.connect() as connection:
        if _revision(connection) == head:
            return head
    # The write engine emits BEGIN IMMEDIATE on SQLite (see store._sqlite_engine).
    locking = store.engine.execution_options(digest_write=True)
    with locking.connect() as connection:
        # SQLite: a table rebuild drops the old table, and with foreign keys on that would first
        # run ON DELETE SET NULL on every delivery. The pragma only works outside a transaction.
        _sqlite_foreign_keys(connection, on=False)
        try:
            return _upgrade_locked(store, head, connection)
        finally:
            _sqlite_foreign_keys(connection, on=True)


def _sqlite_foreign_keys(connection: Connection, *, on: bool) -> None:
    raw = connection.connection.driver_connection
    if connection.dialect.name == "sqlite" and raw is not None:
        raw.execute(f"PRAGMA foreign_keys = {'ON' if on else 'OFF'}")


def _upgrade_locked(store: Store, head: str, connection: Connection) -> str:
    with connection.begin():
        if connection.dialect.name == "postgresql":
            connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _PG_LOCK_KEY})
        current = _revision(connection)
        if current == head:
            return head
        if current is not None and current not in _known_revisions():
            raise DatabaseError(
                f"database {masked_url(store.url)} is at schema revision {current}, "
                "which this version of digest does not know",
                hint="upgrade digest to the version that migrated this database",
            )
        if current is None and _has_digest_tables(connection):
            _adopt(connection, store)
            return head
        # Alembic joins the transaction we opened (the lock holds until it commits).
        from alembic import command

        command.upgrade(_config(connection), "head")
    return head
