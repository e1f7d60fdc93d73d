"""The store: SQLAlchemy engine and sessions over SQLite (default) or PostgreSQL.

store is the only home of SQL; delivery, cli, scheduler and web call its functions.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine, create_engine, event, exc
from sqlalchemy.orm import Session, sessionmaker

from digest.errors import ConfigError, DatabaseError

SQLITE_BUSY_TIMEOUT_MS = 30_000


def masked_url(url: str) -> str:
    """The database URL with any password replaced, for messages."""
    return re.sub(r"(://[^:/@]+:)[^@]*@", r"\1***@", url)


@dataclass
class Store:
    """An engine and two session factories: ordinary, and write-locking (claims, run creation)."""

    url: str
    engine: Engine
    _sessions: sessionmaker[Session]
    _write_sessions: sessionmaker[Session]

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A session in a transaction: committed on success, rolled back on error."""
        with _db_errors(self.url), self._sessions() as session, session.begin():
            yield session

    @contextmanager
    def write_transaction(self) -> Iterator[Session]:
        """A transaction that takes the write lock at once (SQLite BEGIN IMMEDIATE).

        On PostgreSQL it is an ordinary transaction: use SELECT ... FOR UPDATE [SKIP LOCKED].
        """
        with _db_errors(self.url), self._write_sessions() as session, session.begin():
            yield session

    def dispose(self) -> None:
        self.engine.dispose()


@contextmanager
def _db_errors(url: str) -> Iterator[None]:
    try:
        yield
    except exc.OperationalError as error:
        reason = str(error.orig).strip().splitlines()[0] if error.orig else str(error)
        raise DatabaseError(f"database {masked_url(url)}: {reason}") from error


def _sqlite_engine(url: str) -> Engine:
    engine = create_engine(
        url, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000, "check_same_thread": False}
    )

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy, not the driver, emit BEGIN (so we can make it IMMEDIATE).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA journal_mode = WAL")
        # NORMAL in WAL mode: a commit survives the process being killed (not power loss).
        cursor.execute("PRAGMA synchronous = NORMAL")
        cursor.execute("PRAGMA foreign_keys = ON")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        immediate = conn.get_execution_options().get("digest_write", False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

    return engine


def open_store(url: str, *, upgrade: bool = True) -> Store:
    """Connect to the database and (by default) create or migrate the schema."""
    try:
        if url.startswith("sqlite"):
            engine = _sqlite_engine(url)
        else:
            if url.startswith("postgresql://"):
                url = "postgresql+psycopg://" + url.removeprefix("postgresql://")
            engine = create_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=10)
    except (exc.ArgumentError, exc.NoSuchModuleError, ImportError) as error:
        hint = None
        if url.startswith("postgresql"):
            hint = "install the PostgreSQL driver: pip install 'digest[postgres]'"
        raise ConfigError(
            f"database.url {masked_url(url)}: not a usable database URL ({error}); "
            "use sqlite:///path.db or postgresql://user:pass@host/db",
            hint=hint,
        ) from error
    write_engine = engine.execution_options(digest_write=True)
    store = Store(
        url=url,
        engine=engine,
        _sessions=sessionmaker(engine, expire_on_commit=False),
        _write_sessions=sessionmaker(write_engine, expire_on_commit=False),
    )
    if upgrade:
        from digest.store.migrate import upgrade_schema

        try:
            upgrade_schema(store)
        except BaseException:
            store.dispose()  # close the pooled connection; nobody else holds the engine
            raise
    return store
