"""The hot path of a run's bookkeeping: record each accepted message, read a status, one call each.

delivery ─► store.recorder: plain SQL on a driver connection of its own, per sending thread.
"""

from __future__ import annotations

import hashlib
import select
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

    A thread whose journal holds its accepted messages (store.journal) settles with
    wait=False: on PostgreSQL the connection is then in libpq's pipeline mode, the statuses are
    read at once and the window's marks go behind that read as a transaction of their own,
    confirmed by the next settle (a window of messages later, long done): the thread no longer
    waits for the UPDATE and its commit (a settle 1.16-1.21 ms median before, 0.32-0.37 ms
    after, in process on bench/send.py). Only a confirmed commit is handed back
    (take_confirmed), so the journal counts a line as in the database only once it is; up to
    two windows a connection are then unrecorded, which the sender's worker row says.
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
        # PostgreSQL, a journaled thread (settle(wait=False)): the statements as prepared on
        # the connection, in libpq's pipeline mode (parameters in text form: $n).
        self._behind_statuses_sql = (
            f"SELECT s.id, {self._status_of.replace('%s', '$1')} FROM subscribers AS s "
            "WHERE s.id = ANY($2::integer[])"
        )
        self._behind_marks_sql = (
            "UPDATE deliveries SET status = "
            f"'{D_SENT}', relay = {relay_sql}, attempts = deliveries.attempts + 1, "
            "message_id = v.message_id, last_reply = v.reply, sent_at = $4::timestamptz, "
            "claimed_by = NULL, next_attempt_at = NULL, updated_at = $4::timestamptz "
            "FROM unnest($1::integer[], $2::text[], $3::text[]) AS v(id, message_id, reply) "
            "WHERE deliveries.id = v.id"
        )
        self._statuses_name = _statement_name(self._behind_statuses_sql)
        self._marks_name = _statement_name(self._behind_marks_sql)
        self._prepared = False  # the two statements above, on this connection
        self._piped = False  # the connection is in pipeline mode
        self._in_flight: list[SentMark] = []  # their commit sent, not yet confirmed
        self._confirmed: list[SentMark] = []  # committed, not yet handed back (take_confirmed)
        self._errors: tuple[type[BaseException], ...] = (dialect.loaded_dbapi.Error,)
        self._lock = sqlite_lock(store.engine) if self._sqlite else None
        self._raw: Any = None

    def settle(
        self, marks: Sequence[SentMark], subscriber_ids: Sequence[int], *, wait: bool = True
    ) -> dict[int, str | None]:
        """Record the accepted messages, then read the subscribers' statuses: one commit.

        Returns every asked subscriber's status as committed now (None: erased, or off this
        digest's list as "off the digest"). The marks are committed on return, and handed back
        by take_confirmed().

        wait=False, for a thread whose journal holds the marks until the database does: on
        PostgreSQL the statuses are read at once and the marks' commit is sent behind that
        read and not waited for (take_confirmed() hands them back once a later call has seen it
        confirmed; the next call with wait=True, or flush(), waits for it). SQLite waits anyway.
        """
        if not marks and not subscriber_ids:
            return {}
        try:
            raw = self._connection()
            if self._sqlite:
                rows = self._settle_sqlite(raw, marks, subscriber_ids)
            elif not wait:
                rows = self._settle_behind(raw, marks, subscriber_ids)
                marks = ()  # confirmed later
            else:
                self._finish_behind(raw)
                rows = self._settle_postgresql(raw, marks, subscriber_ids)
        except self._errors as exc:
            self.close()
            raise database_error(self.store.url, exc) from exc
        self._confirmed.extend(marks)
        statuses: dict[int, str | None] = dict.fromkeys(subscriber_ids)
        for subscriber_id, status in rows:
            statuses[int(subscriber_id)] = str(status)
        return statuses

    def flush(self) -> None:
        """Wait for the commit of any marks settle(wait=False) left in flight."""
        if self._raw is None or not self._piped:
            return
        try:
            self._finish_behind(self._raw)
        except self._errors as exc:
            self.close()
            raise database_error(self.store.url, exc) from exc

    def take_confirmed(self) -> list[SentMark]:
        """The marks whose commit was confirmed since the last call."""
        confirmed, self._confirmed = self._confirmed, []
        return confirmed

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

    def _settle_behind(
        self, raw: Any, marks: Sequence[SentMark], ids: Sequence[int]
    ) -> list[tuple[int, str]]:
        """PostgreSQL, in pipeline mode: the status read, then the marks' UPDATE, each its own
        transaction (a sync point each); waits for the marks sent by the previous call (long
        done, as a window of messages went meanwhile) and for the read, not for these marks."""
        pg = raw.driver_connection.pgconn
        if not self._prepared:
            self._prepare(pg)
        if not self._piped:
            pg.enter_pipeline_mode()
            self._piped = True
        if ids:
            ids_text = "{" + ",".join(map(str, ids)) + "}"
            pg.send_query_prepared(self._statuses_name, [self._digest.encode(), ids_text.encode()])
            pg.pipeline_sync()
        if marks:
            params = [
                ("{" + ",".join(str(m.delivery_id) for m in marks) + "}").encode(),
                _text_array([m.message_id for m in marks]),
                _text_array([m.reply for m in marks]),
                self._now().isoformat().encode(),
            ]
            pg.send_query_prepared(self._marks_name, params)
            pg.pipeline_sync()
        _send_all(pg)
        # Taken out first: after an error nothing of them counts as confirmed.
        earlier, self._in_flight = self._in_flight, []
        if earlier:
            _read_to_sync(pg)
            self._confirmed.extend(earlier)
        rows: list[tuple[int, str]] = []
        if ids:
            (result,) = _read_to_sync(pg)
            rows = [
                (int(result.get_value(i, 0)), result.get_value(i, 1).decode())
                for i in range(result.ntuples)
            ]
        self._in_flight = list(marks)
        return rows

    def _prepare(self, pg: Any) -> None:
        from psycopg import pq  # PostgreSQL's driver: an optional dependency

        for name, sql in (
            (self._statuses_name, self._behind_statuses_sql),
            (self._marks_name, self._behind_marks_sql),
        ):
            result = pg.prepare(name, sql.encode())
            # 42P05: an earlier recorder on this pooled connection prepared the same statement
            # (the name is the text's hash)
            if (
                result.status != pq.ExecStatus.COMMAND_OK
                and result.error_field(pq.DiagnosticField.SQLSTATE) != b"42P05"
            ):
                raise _error(result)
        self._prepared = True

    def _finish_behind(self, raw: Any) -> None:
        """Wait for marks in flight and leave pipeline mode (for anything else on the
        connection)."""
        if not self._piped:
            return
        pg = raw.driver_connection.pgconn
        earlier, self._in_flight = self._in_flight, []
        if earlier:
            _send_all(pg)
            _read_to_sync(pg)
            self._confirmed.extend(earlier)
        pg.exit_pipeline_mode()
        self._piped = False

    def fetch(self, sql: str, params: dict[str, Any]) -> list[Any]:
        """PostgreSQL: one statement on this thread's autocommit connection; its rows, as named
        tuples (store.claims claims a batch this way)."""
        assert not self._sqlite
        from psycopg.rows import namedtuple_row  # PostgreSQL's driver: an optional dependency

        try:
            self._finish_behind(self._connection())
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
        """Give the connection back to the pool (marks still in flight are waited for: they
        are handed back by take_confirmed() if their commit is confirmed)."""
        raw, self._raw = self._raw, None
        self._prepared = False
        if raw is None:
            return
        if self._piped:
            try:
                self._finish_behind(raw)
            except self._errors:  # lost, or in a state the pool must not hand out again
                self._piped, self._in_flight = False, []
                with suppress(*self._errors):
                    raw.invalidate()
                return
        with suppress(*self._errors):
            if not self._sqlite:
                raw.driver_connection.execute("RESET synchronous_commit")
                raw.driver_connection.autocommit = False  # as the pool hands it out
            raw.close()


def _statement_name(sql: str) -> bytes:
    """A prepared statement's name, from its text: the same name is the same statement."""
    return b"digest_" + hashlib.sha256(sql.encode()).hexdigest()[:16].encode()


def _text_array(values: Sequence[str]) -> bytes:
    """A PostgreSQL text[] in its text form."""
    quoted = (v.replace("\\", "\\\\").replace('"', '\\"') for v in values)
    return ("{" + ",".join(f'"{v}"' for v in quoted) + "}").encode()


def _send_all(pg: Any) -> None:
    """Flush libpq's output buffer (the connection is non-blocking)."""
    while pg.flush():
        select.select([], [pg.socket], [])


def _read_to_sync(pg: Any) -> list[Any]:
    """The results up to the next sync point of a pipeline; raises the first error."""
    from psycopg import pq

    results = []
    while True:
        while pg.is_busy():
            select.select([pg.socket], [], [])
            pg.consume_input()
        result = pg.get_result()
        if result is None:
            continue
        if result.status == pq.ExecStatus.PIPELINE_SYNC:
            break
        results.append(result)
    for result in results:
        if result.status not in (pq.ExecStatus.TUPLES_OK, pq.ExecStatus.COMMAND_OK):
            raise _error(result)
    return results


def _error(result: Any) -> BaseException:
    import psycopg

    message = result.error_message.decode("utf-8", "replace").strip()
    return psycopg.DatabaseError(message or "pipeline aborted")
