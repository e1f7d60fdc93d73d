"""Shared fixtures: a real aiosmtpd server on a free loopback port and real databases."""

from __future__ import annotations

import asyncio
import gc
import os
import shutil
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session

from digest.demo import free_port
from digest.store import open_store
from tests.site_fixtures import OPENED_STORES

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


@pytest.fixture
def smtp_server() -> Iterator[SmtpServer]:
    """A real SMTP server (aiosmtpd) on 127.0.0.1 and a free port, recording what it gets."""
    handler = RecordingHandler()
    port = free_port()
    controller = Controller(
        handler, hostname="127.0.0.1", port=port, decode_data=False, enable_SMTPUTF8=True
    )
    controller.start()
    try:
        yield SmtpServer("127.0.0.1", port, handler, controller)
    finally:
        controller.stop()


class SlowHandler(RecordingHandler):
    """Takes a while over each message, so a sender can be killed with messages in flight."""

    delay: float = 0.02

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        await asyncio.sleep(self.delay)
        return await super().handle_DATA(server, session, envelope)


@pytest.fixture
def slow_server() -> Iterator[SmtpServer]:
    """A real SMTP server that takes 20 ms over each message."""
    handler = SlowHandler()
    port = free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port, decode_data=False)
    controller.start()
    try:
        yield SmtpServer("127.0.0.1", port, handler, controller)
    finally:
        controller.stop()


def _pg_schema_url(base: str, schema: str) -> str:
    sep = "&" if "?" in base else "?"
    return f"{base}{sep}options=-csearch_path%3D{schema}"


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh database: an SQLite file; PostgreSQL when DIGEST_TEST_POSTGRES_URL is set."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'digest.db'}"
        return
    if not PG_URL:
        pytest.skip("DIGEST_TEST_POSTGRES_URL is not set")
    import sqlalchemy as sa

    schema = f"t_{uuid.uuid4().hex[:12]}"
    base = PG_URL.replace("postgresql://", "postgresql+psycopg://", 1)
    admin = sa.create_engine(base, poolclass=sa.pool.NullPool)  # each connection closed at once
    with admin.begin() as conn:
        conn.execute(sa.text(f"CREATE SCHEMA {schema}"))
    try:
        yield _pg_schema_url(base, schema)
    finally:
        with admin.begin() as conn:
            conn.execute(sa.text(f"DROP SCHEMA {schema} CASCADE"))
        admin.dispose()


# For a test whose subject is not the store (rendering, config, CLI parsing and output, web pages):
# SQLite only. The tests of the store itself (store, claims, send, migrations, concurrency) run on
# both databases.
sqlite_only = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)


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


@pytest.fixture
def migrated_database_url(database_url: str, request: pytest.FixtureRequest) -> str:
    """database_url with the schema built, for the tests that are not about building it: the
    SQLite file is a copy of one migrated once a session; PostgreSQL's schema is migrated here."""
    if database_url.startswith("sqlite:///"):
        template: Path = request.getfixturevalue("_migrated_sqlite_file")
        shutil.copyfile(template, database_url.removeprefix("sqlite:///"))
    else:
        open_store(database_url).dispose()
    return database_url


@pytest.fixture
def migrated_sqlite_url(sqlite_url: str, _migrated_sqlite_file: Path) -> str:
    """sqlite_url with the schema built: a copy of the file migrated once a session."""
    shutil.copyfile(_migrated_sqlite_file, sqlite_url.removeprefix("sqlite:///"))
    return sqlite_url


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


@pytest.fixture(autouse=True, scope="module")
def _collect_module_garbage() -> Iterator[None]:
    """After a module's own fixtures are gone, collect everything frozen since the last module,
    so a leak from a module-scoped fixture fails that module's last test."""
    yield
    gc.unfreeze()
    gc.collect()
    gc.freeze()


def pytest_sessionfinish() -> None:
    """Give everything back to the collector, for pytest's own last collect."""
    gc.unfreeze()
