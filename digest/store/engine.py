"""The store's engine: SQLAlchemy engine and sessions over SQLite (default) or PostgreSQL.

`Store` and `open_store` (also importable from `digest.store`, which loads this on first use).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine, create_engine, event, exc, make_url
from sqlalchemy.orm import Session, sessionmaker

from digest.errors import ConfigError
from digest.store.db_errors import db_errors, url_password
from digest.store.db_errors import masked_url as masked_url
from digest.store.migrate import upgrade_schema

SQLITE_BUSY_TIMEOUT_MS = 30_000


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
        with db_errors(self.url), self._sessions() as session, session.begin():
            yield session

    @contextmanager
    def write_transaction(self) -> Iterator[Session]:
        """A transaction that takes the write lock at once (SQLite BEGIN IMMEDIATE).

        On PostgreSQL it is an ordinary transaction: use SELECT ... FOR UPDATE [SKIP LOCKED].
        """
        with db_errors(self.url), self._write_sessions() as session, session.begin():
            yield session

    def dispose(self) -> None:
        self.engine.dispose()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.dispose()


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


def _engine(url: str) -> Engine:
    """The engine for `url`; a ConfigError naming the URL (masked) when it cannot be one."""
    shown = masked_url(url)
    usage = "use sqlite:///path.db or postgresql://user:pass@host/db"
    # The causes are dropped: their text may quote the URL, password and all.
    try:
        parsed = make_url(url)
    except ValueError:  # SQLAlchemy's int() of the port
        raise ConfigError(f"database.url {shown}: the port is not a number; {usage}") from None
    except exc.ArgumentError:
        raise ConfigError(f"database.url {shown}: not a database URL; {usage}") from None
    if parsed.get_backend_name() != "sqlite" and "@" in url_password(url):
        raise ConfigError(
            f"database.url {shown}: the password holds a raw @; write it percent-encoded (%40)"
        )
    if parsed.port is not None and not 1 <= parsed.port <= 65535:
        raise ConfigError(
            f"database.url {shown}: port {parsed.port} is out of range (1-65535); {usage}"
        )
    try:
        if parsed.get_backend_name() == "sqlite":
            return _sqlite_engine(url)
        if parsed.drivername == "postgresql":
            parsed = parsed.set(drivername="postgresql+psycopg")
        return create_engine(parsed, pool_pre_ping=True, pool_size=10, max_overflow=10)
    except (exc.ArgumentError, exc.NoSuchModuleError, ImportError) as error:
        hint = None
        if parsed.get_backend_name() == "postgresql":
            hint = "install the PostgreSQL driver: pip install 'digest[postgres]'"
        reason = type(error).__name__ if isinstance(error, exc.ArgumentError) else error
        raise ConfigError(
            f"database.url {shown}: not a usable database URL ({reason}); {usage}", hint=hint
        ) from None


def open_store(url: str, *, upgrade: bool = True) -> Store:
    """Connect to the database and (by default) create or migrate the schema."""
    engine = _engine(url)
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url.removeprefix("postgresql://")
    write_engine = engine.execution_options(digest_write=True)
    store = Store(
        url=url,
        engine=engine,
        _sessions=sessionmaker(engine, expire_on_commit=False),
        _write_sessions=sessionmaker(write_engine, expire_on_commit=False),
    )
    if upgrade:
        try:
            upgrade_schema(store)
        except BaseException:
            store.dispose()  # close the pooled connection; nobody else holds the engine
            raise
    return store
