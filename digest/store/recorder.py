"""The hot path of a run's bookkeeping: record each accepted message, read a status, one call each.

delivery ─► store.recorder: plain SQL on a driver connection of its own, per sending thread.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Sequence
from contextlib import suppress
from datetime import UTC, datetime
from typing import Any, NamedTuple

from digest.store import Store
from digest.store.db_errors import database_error
from digest.store.models import D_SENT, deliveries_table, sqlite_stamp, utcnow
from digest.store.write_lock import sqlite_lock

# UPDATE ... RETURNING came with SQLite 3.35 (2021); older libraries take two statements.
RETURNING_IN_SQLITE = sqlite3.sqlite_version_info >= (3, 35, 0)


def _sqlite_now() -> str:
    """Now in UTC as SQLAlchemy's SQLite DateTime stores it, without its type machinery."""
    return sqlite_stamp(datetime.now(UTC))


class SentMark(NamedTuple):
    """An accepted message to record as sent."""

    delivery_id: int
    message_id: str
    reply: str


class Recorder:
    """One sending thread's own connection for recording accepted messages, a window a commit.

    The per-message path of a run: plain SQL on the driver connection, because building and
    executing a Core statement costs four times SQLite's commit.

    On PostgreSQL each window's commit waits for the server's disk, as every commit does,
    unless `database.durable_marks` is false: then the marks commit with `synchronous_commit =
    off`, visible and safe from this process being killed at once, but a crash of the database
    server itself (or its machine) can lose the last 3 x wal_writer_delay (200 ms by default)
    of them, and those messages are sent again by the next run with only a window of each
    claimed batch counted. With a window of 16 the wait for the disk is paid once per 16
    messages and did not show in bench/send.py (1.07-1.11 of the raw blast waiting, 0.94-1.11
    not); with a window of one it cost 60% of the rate on a busy machine (0.25 against 0.66).
    SQLite runs with synchronous = NORMAL (store): its commits survive this process being
    killed, not a crash of the operating system.
    """

    def __init__(
        self, store: Store, digest: str, *, durable: bool = True, relay: str | None = None
    ) -> None:
        self.store = store
        self._durable = durable
        dialect = store.engine.dialect
        self._sqlite = store.dialect == "sqlite"
        mark = "?" if dialect.paramstyle == "qmark" else "%s"
        # The relay that took the messages (history's `relays`): a name (letters, digits, . - _).
        relay_sql = "NULL" if relay is None else "'" + relay.replace("'", "''") + "'"
        self._sql = (
            f"UPDATE deliveries SET status = '{D_SENT}', relay = {relay_sql}, "
            "attempts = attempts + 1, "
            f"message_id = {mark}, last_reply = {mark}, sent_at = {mark}, claimed_by = NULL, "
            f"next_attempt_at = NULL, updated_at = {mark} WHERE id = {mark}"
        )
        # "active" only while the subscriber is still on this digest (store.recipients'
        # receives_digest, less the pause: a pause only delays what a run already holds).
        on_digest = (
            "(s.all_digests OR EXISTS (SELECT 1 FROM subscriptions AS d "
            f"WHERE d.subscriber_id = s.id AND d.digest = {mark}))"
        )
        self._status_of = f"CASE WHEN {on_digest} THEN s.status ELSE 'off the digest' END"
        status_sql = f"SELECT {self._status_of} FROM subscribers AS s WHERE s.id = {mark}"
        self._statuses_by_count: dict[int, str] = {}
        self._digest = digest
        # One mark and one status (a window of one) in one statement. SQLite (3.35+): the
        # status as the UPDATE's RETURNING value. PostgreSQL: a data-modifying WITH runs, and
        # commits, whether or not the SELECT reads it.
        self._sqlite_mark_and_status_sql = f"{self._sql} RETURNING ({status_sql})"
        self._pg_mark_and_status_sql = (
            f"WITH marked AS ({self._sql} RETURNING id) "
            f"SELECT s.id, {self._status_of} FROM subscribers AS s WHERE s.id = %s"
        )
        # PostgreSQL: a window's marks and the next window's statuses in one statement (one
        # round trip, one commit): a data-modifying WITH runs whether or not the SELECT reads it.
        self._pg_settle_sql = (
            "WITH v AS (SELECT * FROM unnest(%s::integer[], %s::text[], %s::text[]) "
            "AS v(id, message_id, reply)), "
            f"marked AS (UPDATE deliveries SET status = '{D_SENT}', relay = {relay_sql}, "
            "attempts = deliveries.attempts + 1, message_id = v.message_id, "
            "last_reply = v.reply, sent_at = %s, claimed_by = NULL, next_attempt_at = NULL, "
            "updated_at = %s FROM v WHERE deliveries.id = v.id RETURNING deliveries.id) "
            f"SELECT s.id, {self._status_of} FROM subscribers AS s WHERE s.id = ANY(%s::integer[])"
        )
        sent_at = deliveries_table.c.sent_at.type
        self._when: Callable[[Any], Any] = sent_at.dialect_impl(dialect).bind_processor(
            dialect
        ) or (lambda value: value)
        self._now: Callable[[], Any] = _sqlite_now if self._sqlite else lambda: self._when(utcnow())
        self._errors: tuple[type[BaseException], ...] = (dialect.loaded_dbapi.Error,)
        self._lock = sqlite_lock(store.engine) if self._sqlite else None
        self._raw: Any = None

    def settle(
        self, marks: Sequence[SentMark], subscriber_ids: Sequence[int]
    ) -> dict[int, str | None]:
        """Record the accepted messages, then read the subscribers' statuses: one commit.

        Returns every asked subscriber's status as committed now (None: erased, or off this
        digest's list as "off the digest"). The marks are committed on return.
        """
        if not marks and not subscriber_ids:
            return {}
        try:
            raw = self._connection()
            if self._sqlite:
                rows = self._settle_sqlite(raw, marks, subscriber_ids)
            else:
                rows = self._settle_postgresql(raw, marks, subscriber_ids)
        except self._errors as exc:
            self.close()
            raise database_error(self.store.url, exc) from exc
        statuses: dict[int, str | None] = dict.fromkeys(subscriber_ids)
        for subscriber_id, status in rows:
            statuses[int(subscriber_id)] = str(status)
        return statuses

    def _settle_sqlite(
        self, raw: Any, marks: Sequence[SentMark], ids: Sequence[int]
    ) -> list[tuple[int, str]]:
        assert self._lock is not None
        now = self._now()
        if len(marks) == 1 and len(ids) == 1 and RETURNING_IN_SQLITE:
            # The common case of a window of one: the mark and the status in one statement
            # (each call lets go of the GIL, and getting it back behind busy sending threads is
            # what costs). No row back: the delivery row is gone; the status still counts.
            (mark,) = marks
            params = (mark.message_id, mark.reply, now, now, mark.delivery_id, self._digest, ids[0])
            with self._lock:  # fetchall: the statement, and so its transaction, ends here
                rows = raw.execute(self._sqlite_mark_and_status_sql, params).fetchall()
            if rows:
                return [(ids[0], rows[0][0])] if rows[0][0] is not None else []
            marks = ()
        status_sql = self._statuses_sql(len(ids))
        with self._lock:
            if not marks:  # a read alone: no write transaction
                return raw.execute(status_sql, (self._digest, *ids)).fetchall()  # type: ignore[no-any-return]
            # The connection is in autocommit mode (digest.store): one explicit transaction
            # holds every mark of the window and the reads, one commit for all of them.
            raw.execute("BEGIN IMMEDIATE")
            try:
                raw.executemany(
                    self._sql, [(m.message_id, m.reply, now, now, m.delivery_id) for m in marks]
                )
                rows = raw.execute(status_sql, (self._digest, *ids)).fetchall() if ids else []
                raw.execute("COMMIT")
            except BaseException:
                with suppress(*self._errors):
                    raw.execute("ROLLBACK")
                raise
        return rows

    def _statuses_sql(self, count: int) -> str:
        sql = self._statuses_by_count.get(count)
        if sql is None:
            places = ", ".join("?" * count)
            sql = self._statuses_by_count[count] = (
                f"SELECT s.id, {self._status_of} FROM subscribers AS s WHERE s.id IN ({places})"
            )
        return sql

    def _settle_postgresql(
        self, raw: Any, marks: Sequence[SentMark], ids: Sequence[int]
    ) -> list[tuple[int, str]]:
        now = self._now()
        sql = self._pg_settle_sql
        params: tuple[Any, ...]
        if len(marks) == 1 and len(ids) == 1:  # scalars: cheaper to send than four arrays
            (mark,) = marks
            sql = self._pg_mark_and_status_sql
            params = (mark.message_id, mark.reply, now, now, mark.delivery_id, self._digest, ids[0])
        else:
            params = (
                [m.delivery_id for m in marks],
                [m.message_id for m in marks],
                [m.reply for m in marks],
                now,
                now,
                self._digest,
                list(ids),
            )
        cursor = raw.cursor()
        try:
            cursor.execute(sql, params)
            return cursor.fetchall()  # type: ignore[no-any-return]
        finally:
            cursor.close()

    def fetch(self, sql: str, params: dict[str, Any]) -> list[Any]:
        """PostgreSQL: one statement on this thread's autocommit connection; its rows, as named
        tuples (store.claims claims a batch this way)."""
        assert not self._sqlite
        from psycopg.rows import namedtuple_row  # PostgreSQL's driver: an optional dependency

        try:
            cursor = self._connection().driver_connection.cursor(row_factory=namedtuple_row)
            try:
                cursor.execute(sql, params)
                return cursor.fetchall()  # type: ignore[no-any-return]
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
                if not self._durable:  # a window's commit does not wait for the disk (see above)
                    self._raw.driver_connection.execute("SET synchronous_commit = off")
        return self._raw

    def close(self) -> None:
        """Give the connection back to the pool."""
        raw, self._raw = self._raw, None
        if raw is not None:
            with suppress(*self._errors):
                if not self._sqlite:
                    raw.driver_connection.execute("RESET synchronous_commit")
                    raw.driver_connection.autocommit = False  # as the pool hands it out
                raw.close()
