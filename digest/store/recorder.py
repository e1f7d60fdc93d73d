"""The hot path of a run's bookkeeping: record each accepted message, read a status, one call each.

delivery ─► store.recorder: plain SQL on a driver connection of its own, per sending thread.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from contextlib import suppress
from datetime import UTC, datetime
from typing import Any, NamedTuple

from digest.store import Store
from digest.store.db_errors import database_error
from digest.store.models import D_SENT, deliveries_table, utcnow
from digest.store.write_lock import sqlite_lock

# UPDATE ... RETURNING came with SQLite 3.35 (2021); older libraries take two statements.
RETURNING_IN_SQLITE = sqlite3.sqlite_version_info >= (3, 35, 0)


def _sqlite_now() -> str:
    """Now in UTC as SQLAlchemy's SQLite DateTime stores it, without its type machinery."""
    return datetime.now(UTC).replace(tzinfo=None).isoformat(" ", "microseconds")


class SentMark(NamedTuple):
    """An accepted message to record as sent."""

    delivery_id: int
    message_id: str
    reply: str


class Recorder:
    """One sending thread's own connection for recording accepted messages, one commit each.

    The per-message path of a run: plain SQL on the driver connection, because building and
    executing a Core statement costs four times SQLite's commit.

    On PostgreSQL the marks commit with `synchronous_commit = off` unless
    `database.durable_marks`: a commit is visible, and survives this process being killed, at
    once; only a crash of the database server itself (or its machine) can lose the last marks,
    at most 3 x wal_writer_delay (200 ms by default) of them. Those messages are then sent again
    by the next run, and only the first of each claimed batch is counted as a possible re-send.
    Waiting for the server's disk on every message cost 60% of the sending rate (bench/send.py:
    0.25 -> 0.66 of the raw blast). SQLite runs with synchronous = NORMAL (store): the same
    trade against a crash of the operating system.
    """

    def __init__(self, store: Store, digest: str, *, durable: bool = False) -> None:
        self.store = store
        self._durable = durable
        dialect = store.engine.dialect
        self._sqlite = store.dialect == "sqlite"
        mark = "?" if dialect.paramstyle == "qmark" else "%s"
        self._sql = (
            f"UPDATE deliveries SET status = '{D_SENT}', attempts = attempts + 1, "
            f"message_id = {mark}, last_reply = {mark}, sent_at = {mark}, claimed_by = NULL, "
            f"next_attempt_at = NULL, updated_at = {mark} WHERE id = {mark}"
        )
        # "active" only while the subscriber is still on this digest (store.recipients'
        # receives_digest, less the pause: a pause only delays what a run already holds).
        on_digest = (
            "(s.all_digests OR EXISTS (SELECT 1 FROM subscriptions AS d "
            f"WHERE d.subscriber_id = s.id AND d.digest = {mark}))"
        )
        self._status_sql = (
            f"SELECT CASE WHEN {on_digest} THEN s.status ELSE 'off the digest' END "
            f"FROM subscribers AS s WHERE s.id = {mark}"
        )
        self._digest = digest
        # The previous message's mark and the next one's status in one statement. PostgreSQL: a
        # data-modifying WITH runs, and commits, whether or not the SELECT reads it. SQLite
        # (3.35+): the status as the UPDATE's RETURNING value (no row: the delivery is gone).
        self._mark_and_status_sql = f"WITH marked AS ({self._sql} RETURNING id) {self._status_sql}"
        self._sqlite_mark_and_status_sql = f"{self._sql} RETURNING ({self._status_sql})"
        sent_at = deliveries_table.c.sent_at.type
        self._when: Callable[[Any], Any] = sent_at.dialect_impl(dialect).bind_processor(
            dialect
        ) or (lambda value: value)
        self._now: Callable[[], Any] = _sqlite_now if self._sqlite else lambda: self._when(utcnow())
        self._errors: tuple[type[BaseException], ...] = (dialect.loaded_dbapi.Error,)
        self._lock = sqlite_lock(store.engine) if self._sqlite else None
        self._raw: Any = None

    def mark_sent(self, delivery_id: int, message_id: str, reply: str) -> None:
        """The server accepted the message: record it at once (its own commit)."""
        now = self._now()
        params = (message_id, reply, now, now, delivery_id)
        try:
            raw = self._connection()
            if self._lock is not None:
                # The driver connection is in autocommit mode (digest.store): the lone UPDATE is
                # its own transaction, one call instead of three (each call lets go of the GIL,
                # and getting it back behind busy sending threads is what costs).
                with self._lock:
                    raw.execute(self._sql, params)
            else:
                cursor = raw.cursor()
                try:
                    cursor.execute(self._sql, params)
                finally:
                    cursor.close()
        except self._errors as exc:
            self.close()
            raise database_error(self.store.url, exc) from exc

    def _connection(self) -> Any:
        if self._raw is None:
            self._raw = self.store.engine.raw_connection()
            if not self._sqlite:
                # One round trip per statement: each commits (or reads) by itself.
                self._raw.driver_connection.autocommit = True
                if not self._durable:  # a mark's commit does not wait for the disk (see above)
                    self._raw.driver_connection.execute("SET synchronous_commit = off")
        return self._raw

    def status_of(self, subscriber_id: int, *, mark: SentMark | None = None) -> str | None:
        """The subscriber's status as committed now (None: erased); checked before each message.

        `mark`: an accepted message still to record, recorded first (committed on return).
        """
        if mark is not None and self._sqlite and not RETURNING_IN_SQLITE:
            self.mark_sent(*mark)
            mark = None
        try:
            raw = self._connection()
            if self._sqlite and mark is not None:
                now = self._now()
                params = (*mark[1:], now, now, mark.delivery_id, self._digest, subscriber_id)
                assert self._lock is not None
                with self._lock:  # fetchall: the statement, and so its transaction, ends here
                    rows = raw.execute(self._sqlite_mark_and_status_sql, params).fetchall()
                row = rows[0] if rows else None
                if row is None:  # the delivery row is gone: its subscriber's status still counts
                    row = raw.execute(self._status_sql, (self._digest, subscriber_id)).fetchone()
            elif self._sqlite:
                row = raw.execute(self._status_sql, (self._digest, subscriber_id)).fetchone()
            else:
                sql, params = self._status_sql, tuple[Any, ...]((self._digest, subscriber_id))
                if mark is not None:
                    now = self._now()
                    sql = self._mark_and_status_sql
                    params = (
                        mark.message_id,
                        mark.reply,
                        now,
                        now,
                        mark.delivery_id,
                        self._digest,
                        subscriber_id,
                    )
                cursor = raw.cursor()
                try:
                    cursor.execute(sql, params)
                    row = cursor.fetchone()
                finally:
                    cursor.close()
        except self._errors as exc:
            self.close()
            raise database_error(self.store.url, exc) from exc
        return None if row is None else str(row[0])

    def close(self) -> None:
        """Give the connection back to the pool."""
        raw, self._raw = self._raw, None
        if raw is not None:
            with suppress(*self._errors):
                if not self._sqlite:
                    raw.driver_connection.execute("RESET synchronous_commit")
                    raw.driver_connection.autocommit = False  # as the pool hands it out
                raw.close()
