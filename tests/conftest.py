"""Shared fixtures: a real aiosmtpd server on a free loopback port and real databases."""

from __future__ import annotations

import asyncio
import gc
import os
import shutil
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session

from digest.demo import free_port
from digest.store import Store, open_store
from digest.store.migrate import head_revision
from digest.store.models import Base
from tests.helpers import code_gates
from tests.helpers.site_fixtures import OPENED_STORES

PG_URL = os.environ.get("DIGEST_TEST_POSTGRES_URL")

# The slow tests: they start processes, wait on real timers and retries, or run the code gates
# (picked with `pytest --durations=40`). `pytest -m "not slow"` leaves them out for a quick inner
# loop; plain `pytest`, the README's test command, runs everything. Whole modules by file name,
# single tests by file and function name (tests/test_markers.py checks the names still exist).
SLOW_MODULES = {"test_e2e.py", "test_faults.py", "test_quality.py", "test_schedule_and_send.py"}
SLOW_TESTS = {
    "test_delivery.py": {"test_two_senders_together_deliver_each_message_once"},
    "test_migrations.py": {"test_concurrent_first_use_does_not_crash"},
    "test_schedule_cli.py": {
        "test_second_scheduler_refuses_then_takes_over_after_sigkill",
        "test_sigterm_during_a_send_leaves_a_run_the_next_send_finishes_once",
        "test_smtp_down_fails_the_fire_and_the_next_fire_sends",
    },
    "test_scheduler.py": {
        "test_a_due_job_fires_and_a_failed_run_does_not_stop_the_scheduler",
        "test_an_unexpected_error_is_logged_with_traceback_and_it_keeps_going",
    },
    "test_send_cli.py": {"test_smtp_down_exits_1_naming_host_and_port"},
    "test_web.py": {"test_digest_serve_answers_real_http"},
}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark the tests named in SLOW_MODULES and SLOW_TESTS `slow`."""
    for item in items:
        module = item.path.name
        function = getattr(item, "originalname", item.name)
        if module in SLOW_MODULES or function in SLOW_TESTS.get(module, ()):
            item.add_marker(pytest.mark.slow)


@dataclass
class Received:
    mail_from: str
    rcpt_tos: list[str]
    data: bytes

    @property
    def message(self) -> EmailMessage:
        return message_from_bytes(self.data, policy=policy.default)  # type: ignore[return-value]


@dataclass
class RecordingHandler:
    """Records every accepted message; can refuse or greylist chosen recipients.

    permanent: address -> reply ("550 5.1.1 No such user") for every attempt
    transient: address -> how many times to answer 451 before accepting
    """

    messages: list[Received] = field(default_factory=list)
    permanent: dict[str, str] = field(default_factory=dict)
    transient: dict[str, int] = field(default_factory=dict)
    refusals: list[tuple[str, str]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    # Advertise PIPELINING (RFC 2920) as Postfix and most relays do; aiosmtpd reads pipelined
    # commands line by line anyway, it just doesn't say so.
    pipelining: bool = True

    async def handle_EHLO(
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        hostname: str,
        responses: list[str],
    ) -> list[str]:
        session.host_name = hostname
        if self.pipelining:
            responses.insert(-1, "250-PIPELINING")
        return responses

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: Any
    ) -> str:
        key = address.lower()
        with self.lock:
            if key in self.permanent:
                self.refusals.append((key, self.permanent[key]))
                return self.permanent[key]
            if self.transient.get(key, 0) > 0:
                self.transient[key] -= 1
                self.refusals.append((key, "451"))
                return "451 4.7.1 Greylisted, try again later"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        data = envelope.original_content or envelope.content
        assert isinstance(data, bytes)
        with self.lock:
            self.messages.append(
                Received(str(envelope.mail_from), list(envelope.rcpt_tos), bytes(data))
            )
        return "250 Message accepted for delivery"

    def to(self, address: str) -> list[Received]:
        """Messages received for one address."""
        with self.lock:
            return [m for m in self.messages if address.lower() in (r.lower() for r in m.rcpt_tos)]


@dataclass
class SmtpServer:
    host: str
    port: int
    handler: RecordingHandler
    controller: Controller


@contextmanager
def serving(handler: RecordingHandler, **options: Any) -> Iterator[SmtpServer]:
    """`handler` answering as a real SMTP server (aiosmtpd) on 127.0.0.1 and a free port,
    stopped at the end."""
    port = free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port, decode_data=False, **options)
    controller.start()
    try:
        yield SmtpServer("127.0.0.1", port, handler, controller)
    finally:
        controller.stop()


@pytest.fixture
def smtp_server() -> Iterator[SmtpServer]:
    """A real SMTP server (aiosmtpd) on 127.0.0.1 and a free port, recording what it gets."""
    with serving(RecordingHandler(), enable_SMTPUTF8=True) as server:
        yield server


class SlowHandler(RecordingHandler):
    """Takes a while over each message, so a sender can be killed with messages in flight."""

    delay: float = 0.02

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        await asyncio.sleep(self.delay)
        return await super().handle_DATA(server, session, envelope)


@pytest.fixture
def slow_server() -> Iterator[SmtpServer]:
    """A real SMTP server that takes 20 ms over each message."""
    with serving(SlowHandler()) as server:
        yield server


def _pg_schema_url(base: str, schema: str) -> str:
    sep = "&" if "?" in base else "?"
    return f"{base}{sep}options=-csearch_path%3D{schema}"


def _pg_base() -> str:
    assert PG_URL is not None
    return PG_URL.replace("postgresql://", "postgresql+psycopg://", 1)


@pytest.fixture(params=["sqlite", "postgresql"])
def database(request: pytest.FixtureRequest) -> str:
    """The database a test runs on: SQLite; PostgreSQL when DIGEST_TEST_POSTGRES_URL is set."""
    if request.param == "postgresql" and not PG_URL:
        pytest.skip("DIGEST_TEST_POSTGRES_URL is not set")
    return str(request.param)


# For a test whose subject is not the store (rendering, config, CLI parsing and output, web pages):
# SQLite only. The tests of the store itself (store, claims, send, migrations, concurrency) run on
# both databases.
sqlite_only = pytest.mark.parametrize("database", ["sqlite"], indirect=True)


@pytest.fixture
def database_url(database: str, tmp_path: Path) -> Iterator[str]:
    """A fresh, empty database: an SQLite file, or a new PostgreSQL schema."""
    if database == "sqlite":
        yield f"sqlite:///{tmp_path / 'digest.db'}"
        return
    schema = f"t_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(_pg_base(), poolclass=sa.pool.NullPool)  # connections closed at once
    with admin.begin() as conn:
        conn.execute(sa.text(f"CREATE SCHEMA {schema}"))
    try:
        yield _pg_schema_url(_pg_base(), schema)
    finally:
        with admin.begin() as conn:
            conn.execute(sa.text(f"DROP SCHEMA {schema} CASCADE"))
        admin.dispose()


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    """An SQLite file URL in the test's folder."""
    return f"sqlite:///{tmp_path / 'digest.db'}"


@pytest.fixture(scope="session")
def _migrated_sqlite_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An SQLite file the migrations built, once a session (a migration run costs ~0.15 s)."""
    path = tmp_path_factory.mktemp("migrated") / "digest.db"
    open_store(f"sqlite:///{path}").dispose()  # the last close folds the WAL into the file
    return path


# What a PostgreSQL schema's tables, columns, indexes and constraints are, as one hash.
_PG_SHAPE = sa.text(
    """
    SELECT md5(string_agg(part, ',' ORDER BY part)) FROM (
        SELECT table_name || '.' || column_name || ' ' || data_type || ' ' || is_nullable
               || ' ' || coalesce(column_default, '') AS part
        FROM information_schema.columns WHERE table_schema = :schema
        UNION ALL
        SELECT indexname || ' ' || indexdef FROM pg_indexes WHERE schemaname = :schema
        UNION ALL
        SELECT conname || ' ' || pg_get_constraintdef(c.oid)
        FROM pg_constraint c JOIN pg_namespace n ON n.oid = c.connamespace
        WHERE n.nspname = :schema
    ) AS parts
    """
)


@dataclass
class PgSchemas:
    """Migrated PostgreSQL schemas, emptied and handed to the next test (a migration costs ~0.5 s,
    emptying ~0.05 s). One a test changed the shape or revision of is dropped instead."""

    admin: sa.Engine
    free: list[str] = field(default_factory=list)
    made: list[str] = field(default_factory=list)
    shape: str | None = None

    def take(self) -> str:
        if self.free:
            return self.free.pop()
        schema = f"t_{uuid.uuid4().hex[:12]}"
        with self.admin.begin() as conn:
            conn.execute(sa.text(f"CREATE SCHEMA {schema}"))
        self.made.append(schema)
        open_store(_pg_schema_url(_pg_base(), schema)).dispose()
        if self.shape is None:
            self.shape = self._shape(schema)
        return schema

    def _shape(self, schema: str) -> str | None:
        with self.admin.connect() as conn:
            return conn.execute(_PG_SHAPE, {"schema": schema}).scalar()

    def give_back(self, schema: str) -> None:
        """Empty the schema for the next test if it is as migrated; drop it otherwise."""
        with self.admin.begin() as conn:
            intact = conn.execute(_PG_SHAPE, {"schema": schema}).scalar() == self.shape
            if intact:
                versions = conn.execute(
                    sa.text(f"SELECT version_num FROM {schema}.alembic_version")
                )
                intact = versions.scalars().all() == [head_revision()]
            if intact:
                for table in reversed(Base.metadata.sorted_tables):
                    conn.execute(sa.text(f'DELETE FROM {schema}."{table.name}"'))
                sequences = conn.execute(
                    sa.text(
                        "SELECT sequence_name FROM information_schema.sequences"
                        " WHERE sequence_schema = :schema"
                    ),
                    {"schema": schema},
                )
                for sequence in sequences.scalars().all():
                    conn.execute(sa.text(f'ALTER SEQUENCE {schema}."{sequence}" RESTART'))
            else:
                conn.execute(sa.text(f"DROP SCHEMA {schema} CASCADE"))
                self.made.remove(schema)
        if intact:
            self.free.append(schema)


@pytest.fixture(scope="session")
def _pg_schemas() -> Iterator[PgSchemas]:
    schemas = PgSchemas(sa.create_engine(_pg_base(), poolclass=sa.pool.NullPool))
    try:
        yield schemas
    finally:
        with schemas.admin.begin() as conn:
            for schema in schemas.made:
                conn.execute(sa.text(f"DROP SCHEMA {schema} CASCADE"))
        schemas.admin.dispose()


@pytest.fixture
def migrated_database_url(
    database: str, tmp_path: Path, request: pytest.FixtureRequest
) -> Iterator[str]:
    """A database with the schema built and no rows, for the tests that are not about building
    it: a copy of an SQLite file migrated once a session, or an emptied migrated PostgreSQL schema
    (test_migrations.py and the first-use tests build theirs from empty)."""
    if database == "sqlite":
        template: Path = request.getfixturevalue("_migrated_sqlite_file")
        shutil.copyfile(template, tmp_path / "digest.db")
        yield f"sqlite:///{tmp_path / 'digest.db'}"
        return
    schemas: PgSchemas = request.getfixturevalue("_pg_schemas")
    schema = schemas.take()
    try:
        yield _pg_schema_url(_pg_base(), schema)
    finally:
        schemas.give_back(schema)


@pytest.fixture
def migrated_sqlite_url(sqlite_url: str, _migrated_sqlite_file: Path) -> str:
    """sqlite_url with the schema built: a copy of the file migrated once a session."""
    shutil.copyfile(_migrated_sqlite_file, sqlite_url.removeprefix("sqlite:///"))
    return sqlite_url


@pytest.fixture
def store(migrated_database_url: str) -> Iterator[Store]:
    """The one store fixture: a migrated, empty store on each database the test runs on."""
    with open_store(migrated_database_url) as opened:
        yield opened


@pytest.fixture
def sqlite_store(migrated_sqlite_url: str) -> Iterator[Store]:
    """A migrated, empty SQLite store, for tests whose subject is not the database."""
    with open_store(migrated_sqlite_url) as opened:
        yield opened


@pytest.fixture(autouse=True)
def _collect_garbage() -> Iterator[None]:
    """Dispose the stores a test opened through Site.store(), then collect, so an unclosed
    connection or file fails the test that left it, not a later one."""
    yield
    while OPENED_STORES:
        OPENED_STORES.pop().dispose()
    gc.collect()
    # What is still alive now is not this test's garbage: move it to the permanent generation,
    # so the next test's collect walks only the objects that test made. A full collect walks
    # the whole heap (SQLAlchemy, Alembic, Flask...), about 0.3 s per test.
    gc.freeze()


# Whether a module- or class-scoped fixture was set up since the last module ended.
_wide_fixtures = [False]


def pytest_fixture_setup(fixturedef: pytest.FixtureDef[Any]) -> None:
    if fixturedef.scope in ("class", "module") and fixturedef.argname != "_collect_wide_garbage":
        _wide_fixtures[0] = True


@pytest.fixture(autouse=True, scope="module")
def _collect_wide_garbage() -> Iterator[None]:
    """A module- or class-scoped fixture made its objects before some test's freeze: when the
    module is done and they are gone, collect everything, so a leak of one fails the module's
    last test. Modules without such fixtures skip this whole-heap walk."""
    yield
    if _wide_fixtures[0]:
        _wide_fixtures[0] = False
        gc.unfreeze()
        gc.collect()
        gc.freeze()


def pytest_collection_finish(session: pytest.Session) -> None:
    """Start the code gates now if test_quality.py is to run: they take a core for a while
    (mypy most), and the rest of the suite mostly uses the other."""
    if any(item.path.name == "test_quality.py" for item in session.items):
        code_gates.start()


def pytest_sessionfinish() -> None:
    """Stop any gate left unread; give everything back to the collector for pytest's last one."""
    code_gates.stop_all()
    gc.unfreeze()


@pytest.fixture(autouse=True, scope="session")
def _senders_state_home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Senders on PostgreSQL keep their journals under $XDG_STATE_HOME (store.journal): the
    suite's own, not the user's (sender subprocesses inherit it)."""
    before = os.environ.get("XDG_STATE_HOME")
    os.environ["XDG_STATE_HOME"] = str(tmp_path_factory.mktemp("state"))
    yield
    if before is None:
        del os.environ["XDG_STATE_HOME"]
    else:
        os.environ["XDG_STATE_HOME"] = before
