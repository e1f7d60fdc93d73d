"""The durable outbox: runs, their segments, one delivery row per message, posts used up, workers.

delivery ─► store.outbox: every state change of a message is a committed row, so a killed
sender resumes where it stopped (claims of a dead sender are taken over, never lost).
"""

from __future__ import annotations

import os
import socket
import threading
import uuid
import weakref
from collections.abc import Callable, Collection, Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, NamedTuple

from sqlalchemy import (
    Connection,
    Engine,
    Table,
    bindparam,
    delete,
    func,
    insert,
    literal,
    or_,
    select,
    update,
)
from sqlalchemy.orm import Session

from digest.errors import DatabaseError
from digest.store import Store, _db_errors, masked_url, queries
from digest.store.models import (
    ACTIVE,
    BOUNCED,
    D_FAILED,
    D_PENDING,
    D_SENDING,
    D_SENT,
    D_SKIPPED,
    RUN_FINISHED,
    RUN_SENDING,
    Delivery,
    DigestState,
    Run,
    Segment,
    SentPost,
    Subscriber,
    Worker,
    utcnow,
)

# A sender that has not beaten its heartbeat for this long is taken for dead: its claimed
# (in-flight) deliveries are taken over by the next sender.
LEASE_TIMEOUT = timedelta(seconds=60)
HEARTBEAT_EVERY = 10.0  # seconds
HOST = socket.gethostname()
# last_reply of a delivery that was in flight when its sender died (until it is sent again).
IN_FLIGHT_MARK = "in flight when its sender stopped; sending again"

_R: Table = Run.__table__  # type: ignore[assignment]
_W: Table = Worker.__table__  # type: ignore[assignment]
_D: Table = Delivery.__table__  # type: ignore[assignment]
_S: Table = Subscriber.__table__  # type: ignore[assignment]


class Claim(NamedTuple):
    """One delivery claimed by a sender: who gets it and from which segment."""

    delivery_id: int
    subscriber_id: int
    email: str
    name: str
    segment_id: int
    reclaimed: bool  # taken over from a dead sender: it may have gone out already
    categories: tuple[str, ...] = ()  # the subscriber's own, for "why you get this"


@dataclass(frozen=True)
class RunSummary:
    """One run as `digest history` shows it."""

    id: int
    digest: str
    as_of: datetime
    started_at: datetime
    finished_at: datetime | None
    status: str
    trigger: str
    posts: int
    sent: int
    failed: int
    pending: int  # pending + in flight
    skipped: int

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "digest": self.digest,
            "as_of": self.as_of.isoformat(),
            "started_at": self.started_at.isoformat(),
            "finished_at": self.finished_at.isoformat() if self.finished_at else None,
            "status": self.status,
            "trigger": self.trigger,
            "posts": self.posts,
            "sent": self.sent,
            "failed": self.failed,
            "pending": self.pending,
            "skipped": self.skipped,
        }


@dataclass(frozen=True)
class Outlook:
    """What is left of a run for one sender that found nothing to claim just now."""

    waiting: int  # pending rows this sender may still retry (not given up in this pass)
    next_due: datetime | None  # the earliest next_attempt_at among them
    others_sending: int  # rows in flight with another (live) sender


# Writes on the hot path go through Core on one pooled connection. On SQLite the threads of
# one process take turns on a lock first: waiting in SQLite's busy handler sleeps in steps of
# up to 100 ms, while a lock hands over at once.
_SQLITE_LOCKS: weakref.WeakKeyDictionary[Engine, threading.Lock] = weakref.WeakKeyDictionary()
_WRITE_ENGINES: weakref.WeakKeyDictionary[Engine, Engine] = weakref.WeakKeyDictionary()
_GUARD = threading.Lock()


def _sqlite_lock(engine: Engine) -> threading.Lock:
    with _GUARD:
        return _SQLITE_LOCKS.setdefault(engine, threading.Lock())


@contextmanager
def writing(store: Store) -> Iterator[Connection]:
    """A short write transaction on a Core connection (SQLite: BEGIN IMMEDIATE)."""
    engine = store.engine
    if store.dialect != "sqlite":
        with _db_errors(store.url), engine.begin() as conn:
            yield conn
        return
    lock = _sqlite_lock(engine)
    with _GUARD:
        write_engine = _WRITE_ENGINES.get(engine)
        if write_engine is None:
            write_engine = _WRITE_ENGINES[engine] = engine.execution_options(digest_write=True)
    with lock, _db_errors(store.url), write_engine.begin() as conn:
        yield conn


class Recorder:
    """One sending thread's own connection for recording accepted messages, one commit each.

    The per-message path of a run: plain SQL on the driver connection, because building and
    executing a Core statement costs four times SQLite's commit. Same effect as mark_sent.
    """

    def __init__(self, store: Store) -> None:
        self.store = store
        dialect = store.engine.dialect
        self._sqlite = store.dialect == "sqlite"
        mark = "?" if dialect.paramstyle == "qmark" else "%s"
        self._sql = (
            f"UPDATE deliveries SET status = '{D_SENT}', attempts = attempts + 1, "
            f"message_id = {mark}, last_reply = {mark}, sent_at = {mark}, claimed_by = NULL, "
            f"next_attempt_at = NULL, updated_at = {mark} WHERE id = {mark}"
        )
        sent_at = _D.c.sent_at.type
        self._when: Callable[[Any], Any] = sent_at.dialect_impl(dialect).bind_processor(
            dialect
        ) or (lambda value: value)
        self._errors: tuple[type[BaseException], ...] = (dialect.loaded_dbapi.Error,)
        self._lock = _sqlite_lock(store.engine) if self._sqlite else None
        self._raw: Any = None

    def mark_sent(self, delivery_id: int, message_id: str, reply: str) -> None:
        """The server accepted the message: record it at once (its own commit)."""
        now = self._when(utcnow())
        params = (message_id, reply, now, now, delivery_id)
        try:
            if self._raw is None:
                self._raw = self.store.engine.raw_connection()
                if not self._sqlite:
                    # One round trip per message: the lone UPDATE commits itself.
                    self._raw.driver_connection.autocommit = True
            raw = self._raw
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
            raise DatabaseError(f"database {masked_url(self.store.url)}: {exc}") from exc

    def close(self) -> None:
        """Give the connection back to the pool."""
        raw, self._raw = self._raw, None
        if raw is not None:
            with suppress(*self._errors):
                if not self._sqlite:
                    raw.driver_connection.autocommit = False  # as the pool hands it out
                raw.close()


# --- runs -------------------------------------------------------------------------------------


def unfinished_runs(session: Session, digest: str) -> list[Run]:
    """Runs of `digest` that still have deliveries to make, oldest first."""
    stmt = select(Run).where(Run.digest == digest, Run.status == RUN_SENDING).order_by(Run.id)
    return list(session.scalars(stmt))


def get_run(session: Session, run_id: int) -> Run | None:
    """The run with this id, or None."""
    return session.get(Run, run_id)


def run_segments(session: Session, run_id: int) -> list[tuple[int, list[str]]]:
    """(segment id, post ids) of a run."""
    stmt = select(Segment.id, Segment.post_ids).where(Segment.run_id == run_id)
    return [(int(i), list(p)) for i, p in session.execute(stmt.order_by(Segment.id))]


def sent_post_ids(session: Session, digest: str) -> set[str]:
    """Ids of posts an earlier run of `digest` included (never new again)."""
    return queries.sent_post_ids(session, digest)


def _lock_digest(session: Session, store: Store, digest: str) -> None:
    """Serialise run creation per digest (SQLite: BEGIN IMMEDIATE already holds the lock)."""
    if store.dialect != "postgresql":
        return
    from sqlalchemy.dialects.postgresql import insert as pg_insert

    session.execute(
        pg_insert(DigestState)
        .values(digest=digest, updated_at=utcnow())
        .on_conflict_do_nothing(index_elements=["digest"])
    )
    session.execute(
        select(DigestState.digest).where(DigestState.digest == digest).with_for_update()
    )


def create_run(
    store: Store,
    digest: str,
    as_of: datetime,
    post_ids: Sequence[str],
    segments: Sequence[tuple[Sequence[str], Sequence[int]]],
    trigger: str = "manual",
    *,
    known_unfinished: Collection[int] = (),
) -> int | None:
    """Record a run, its segments, every delivery and its posts in one transaction.

    Returns the new run id, or None when another sender got there first (an unfinished run of
    the digest other than `known_unfinished` exists, or one of the posts was used up
    meanwhile): finish that one instead. The caller has already tried the known ones; what
    they still hold back (4xx deferrals) does not hold back new posts.
    """
    now = utcnow()
    with store.write_transaction() as session:
        _lock_digest(session, store, digest)
        if {r.id for r in unfinished_runs(session, digest)} - set(known_unfinished):
            return None
        if sent_post_ids(session, digest).intersection(post_ids):
            return None
        run_id = session.execute(
            insert(Run)
            .values(
                digest=digest,
                as_of=as_of,
                started_at=now,
                status=RUN_SENDING,
                post_ids=list(post_ids),
                trigger=trigger,
            )
            .returning(Run.id)
        ).scalar_one()
        rows: list[dict[str, Any]] = []
        for seg_posts, subscriber_ids in segments:
            segment_id = session.execute(
                insert(Segment)
                .values(run_id=run_id, post_ids=list(seg_posts))
                .returning(Segment.id)
            ).scalar_one()
            rows.extend(
                {
                    "run_id": run_id,
                    "segment_id": segment_id,
                    "subscriber_id": sid,
                    "status": D_PENDING,
                    "attempts": 0,
                    "updated_at": now,
                }
                for sid in subscriber_ids
            )
        if rows:
            session.execute(insert(Delivery), rows)
        if post_ids:
            session.execute(
                insert(SentPost),
                [{"digest": digest, "post_id": p, "run_id": run_id} for p in post_ids],
            )
        return int(run_id)


def finish_run_if_done(store: Store, run_id: int) -> bool:
    """Mark the run finished when no delivery is pending or in flight; True if it is finished."""
    with writing(store) as session:
        left = session.execute(
            select(func.count())
            .select_from(_D)
            .where(_D.c.run_id == run_id, _D.c.status.in_((D_PENDING, D_SENDING)))
        ).scalar_one()
        if left:
            return False
        session.execute(
            update(_R)
            .where(_R.c.id == run_id, _R.c.status == RUN_SENDING)
            .values(status=RUN_FINISHED, finished_at=utcnow())
        )
        return True


def run_counts(session: Session, run_id: int) -> dict[str, int]:
    """Deliveries of a run by status (every status present, zero if none)."""
    counts = dict.fromkeys((D_PENDING, D_SENDING, D_SENT, D_FAILED, D_SKIPPED), 0)
    stmt = select(_D.c.status, func.count()).where(_D.c.run_id == run_id).group_by(_D.c.status)
    for status, n in session.execute(stmt):
        counts[str(status)] = int(n)
    return counts


def history(session: Session, digest: str | None = None) -> list[RunSummary]:
    """Past runs, newest first, with their delivery counts."""
    runs_stmt = select(Run).order_by(Run.started_at.desc(), Run.id.desc())
    if digest is not None:
        runs_stmt = runs_stmt.where(Run.digest == digest)
    runs = list(session.scalars(runs_stmt))
    counts: dict[int, dict[str, int]] = {}
    count_stmt = select(_D.c.run_id, _D.c.status, func.count()).group_by(_D.c.run_id, _D.c.status)
    if digest is not None:
        count_stmt = count_stmt.where(_D.c.run_id.in_([r.id for r in runs]))
    for run_id, status, n in session.execute(count_stmt):
        counts.setdefault(int(run_id), {})[str(status)] = int(n)
    out = []
    for run in runs:
        c = counts.get(run.id, {})
        out.append(
            RunSummary(
                id=run.id,
                digest=run.digest,
                as_of=run.as_of,
                started_at=run.started_at,
                finished_at=run.finished_at,
                status=run.status,
                trigger=run.trigger,
                posts=len(run.post_ids or ()),
                sent=c.get(D_SENT, 0),
                failed=c.get(D_FAILED, 0),
                pending=c.get(D_PENDING, 0) + c.get(D_SENDING, 0),
                skipped=c.get(D_SKIPPED, 0),
            )
        )
    return out


# --- workers ----------------------------------------------------------------------------------


def register_worker(store: Store, kind: str = "sender") -> str:
    """Record this process as a live worker; returns its id (host:pid:random)."""
    worker_id = f"{HOST}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
    now = utcnow()
    with store.write_transaction() as session:
        # Rows of workers long dead only clutter the table; their claims are dead either way.
        session.execute(delete(Worker).where(Worker.heartbeat_at < now - 10 * LEASE_TIMEOUT))
        session.execute(
            insert(Worker).values(
                id=worker_id,
                host=HOST,
                pid=os.getpid(),
                kind=kind,
                started_at=now,
                heartbeat_at=now,
            )
        )
    return worker_id


def heartbeat(store: Store, worker_id: str) -> None:
    """Tell other senders this worker is alive (its claims hold)."""
    with writing(store) as session:
        session.execute(update(_W).where(_W.c.id == worker_id).values(heartbeat_at=utcnow()))


def unregister_worker(store: Store, worker_id: str) -> None:
    """Remove the worker row (its claims, if any are left, become takeable at once)."""
    with store.write_transaction() as session:
        session.execute(delete(Worker).where(Worker.id == worker_id))


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _dead_claimers(session: Connection, run_id: int, worker_id: str, now: datetime) -> list[str]:
    rows = session.scalars(_CLAIMERS, {"rid": run_id, "wid": worker_id})
    claimers = [str(c) for c in rows if c is not None]
    if not claimers:
        return []
    workers = {
        str(wid): (str(host), int(pid), beat)
        for wid, host, pid, beat in session.execute(
            select(_W.c.id, _W.c.host, _W.c.pid, _W.c.heartbeat_at).where(_W.c.id.in_(claimers))
        )
    }
    dead = []
    for claimer in claimers:
        w = workers.get(claimer)
        if w is None or w[2] < now - LEASE_TIMEOUT or (w[0] == HOST and not _pid_alive(w[1])):
            dead.append(claimer)
    return dead


def _take_over(session: Connection, run_id: int, dead: list[str], now: datetime) -> None:
    """Put every delivery dead senders held back to pending, marking those maybe in flight."""
    in_flight = _maybe_in_flight(session, run_id, dead)
    session.execute(
        update(_D)
        .where(_D.c.run_id == run_id, _D.c.status == D_SENDING, _D.c.claimed_by.in_(dead))
        .values(status=D_PENDING, claimed_by=None, claimed_at=None, updated_at=now)
    )
    if in_flight:
        session.execute(
            update(_D).where(_D.c.id.in_(list(in_flight))).values(last_reply=IN_FLIGHT_MARK)
        )


def _maybe_in_flight(session: Connection, run_id: int, dead: list[str]) -> set[int]:
    """Of the deliveries dead senders held, those that may have reached the server.

    A sender's thread claims a batch (one claimed_at) and sends it in id order, recording each
    outcome at once: so only the lowest id still held from each batch was possibly in flight;
    the others were never tried.
    """
    stmt = (
        select(func.min(_D.c.id))
        .where(_D.c.run_id == run_id, _D.c.status == D_SENDING, _D.c.claimed_by.in_(dead))
        .group_by(_D.c.claimed_by, _D.c.claimed_at)
    )
    return {int(i) for i in session.scalars(stmt)}


# --- claims and outcomes ----------------------------------------------------------------------


_CLAIMERS = (
    select(_D.c.claimed_by)
    .where(
        _D.c.run_id == bindparam("rid"),
        _D.c.status == D_SENDING,
        _D.c.claimed_by != bindparam("wid"),
    )
    .distinct()
)
_DUE = (
    select(
        _D.c.id,
        _D.c.subscriber_id,
        _S.c.email,
        _S.c.name,
        _S.c.status,
        _D.c.segment_id,
        _D.c.last_reply,
        _S.c.categories,
    )
    .select_from(_D.outerjoin(_S, _S.c.id == _D.c.subscriber_id))
    .where(
        _D.c.run_id == bindparam("rid"),
        _D.c.status == D_PENDING,
        or_(_D.c.next_attempt_at.is_(None), _D.c.next_attempt_at <= bindparam("now")),
        _D.c.id.not_in(bindparam("exclude", expanding=True)),
    )
    .order_by(_D.c.id)
    .limit(bindparam("lim"))
)
_DUE_LOCKED = _DUE.with_for_update(skip_locked=True, of=_D)
_TAKE = (
    update(_D)
    .where(_D.c.id.in_(bindparam("ids", expanding=True)))
    .values(
        status=D_SENDING,
        claimed_by=bindparam("wid"),
        claimed_at=bindparam("now"),
        updated_at=bindparam("now"),
    )
)
_SKIP = (
    update(_D)
    .where(_D.c.id == bindparam("did"))
    .values(status=D_SKIPPED, claimed_by=None, last_reply=bindparam("reason"))
)


def claim(
    store: Store,
    run_id: int,
    worker_id: str,
    limit: int,
    *,
    exclude: Collection[int] = (),
    take_over: bool = True,
) -> list[Claim]:
    """Claim up to `limit` due deliveries for this worker, taking over those of dead senders.

    Deliveries of subscribers who are no longer active (or were erased) become `skipped`.
    take_over=False skips the look for dead senders (a busy sender looks now and then).
    """
    due = _DUE_LOCKED if store.dialect == "postgresql" else _DUE
    while True:
        now = utcnow()
        with writing(store) as conn:
            dead = _dead_claimers(conn, run_id, worker_id, now) if take_over else []
            if dead:
                _take_over(conn, run_id, dead, now)
            params = {"rid": run_id, "now": now, "lim": limit, "exclude": list(exclude)}
            rows = conn.execute(due, params).all()
            claims: list[Claim] = []
            skipped: list[dict[str, Any]] = []
            for did, sid, email, name, sub_status, seg, last_reply, cats in rows:
                if sid is None or sub_status != ACTIVE:
                    skipped.append(
                        {"did": did, "reason": f"subscriber is {sub_status or 'erased'}"}
                    )
                else:
                    again = last_reply == IN_FLIGHT_MARK
                    claims.append(Claim(did, sid, email, name or "", seg, again, tuple(cats or ())))
            if claims:
                ids = [c.delivery_id for c in claims]
                conn.execute(_TAKE, {"ids": ids, "wid": worker_id, "now": now})
            if skipped:
                conn.execute(_SKIP, skipped)
        if claims or len(rows) < limit:
            return claims


def release_claims(
    store: Store,
    run_id: int,
    worker_id: str,
    delivery_ids: Collection[int] | None = None,
    *,
    keep: Collection[int] = (),
) -> int:
    """Put this worker's claimed, unsent deliveries back to pending (a stop, an abort).

    `keep`: deliveries whose outcome is unknown (sent, then the database failed): they stay
    claimed, so the next sender takes them over as possibly sent, and counts them.
    """
    stmt = update(_D).where(
        _D.c.run_id == run_id, _D.c.status == D_SENDING, _D.c.claimed_by == worker_id
    )
    if delivery_ids is not None:
        if not delivery_ids:
            return 0
        stmt = stmt.where(_D.c.id.in_(list(delivery_ids)))
    if keep:
        stmt = stmt.where(_D.c.id.not_in(list(keep)))
    with writing(store) as session:
        result = session.execute(
            stmt.values(status=D_PENDING, claimed_by=None, claimed_at=None, updated_at=utcnow())
        )
        return int(result.rowcount)


# Built once: on the hot path, building and keying a statement per message costs more than
# SQLite's commit.
_MARK_SENT = (
    update(_D)
    .where(_D.c.id == bindparam("did"))
    .values(
        status=D_SENT,
        attempts=_D.c.attempts + 1,
        message_id=bindparam("mid"),
        last_reply=bindparam("reply"),
        sent_at=bindparam("now"),
        claimed_by=None,
        next_attempt_at=None,
        updated_at=bindparam("now"),
    )
)


def mark_sent(store: Store, delivery_id: int, message_id: str, reply: str) -> None:
    """The server accepted the message: record it at once (its own commit)."""
    now = utcnow()
    with writing(store) as conn:
        conn.execute(
            _MARK_SENT, {"did": delivery_id, "mid": message_id, "reply": reply, "now": now}
        )


def mark_transient(store: Store, delivery_id: int, reply: str, retry_backoff: float) -> int:
    """A 4xx (or a lost connection): back to pending, due after a doubling backoff.

    Returns the delivery's attempt count after this one.
    """
    now = utcnow()
    with writing(store) as session:
        attempts = int(
            session.execute(
                update(_D)
                .where(_D.c.id == delivery_id)
                .values(attempts=_D.c.attempts + 1)
                .returning(_D.c.attempts)
            ).scalar_one()
        )
        delay = retry_backoff * 2 ** max(attempts - 1, 0)
        session.execute(
            update(_D)
            .where(_D.c.id == delivery_id)
            .values(
                status=D_PENDING,
                next_attempt_at=now + timedelta(seconds=delay),
                last_reply=reply,
                claimed_by=None,
                claimed_at=None,
                updated_at=now,
            )
        )
        return attempts


def mark_failed(store: Store, delivery_id: int, subscriber_id: int | None, reply: str) -> None:
    """A 5xx refusal: the delivery failed and the subscriber is bounced, in one transaction."""
    now = utcnow()
    with writing(store) as session:
        session.execute(
            update(_D)
            .where(_D.c.id == delivery_id)
            .values(
                status=D_FAILED,
                attempts=_D.c.attempts + 1,
                last_reply=reply,
                claimed_by=None,
                updated_at=now,
            )
        )
        if subscriber_id is not None:
            session.execute(
                update(_S)
                .where(_S.c.id == subscriber_id, _S.c.status == ACTIVE)
                .values(
                    status=BOUNCED,
                    status_reason=reply,
                    status_changed_at=now,
                    updated_at=now,
                )
            )


def give_up_deferred(store: Store, run_id: int, *, started_before: datetime) -> int:
    """Fail the run's deliveries still deferred (4xx) if the run started before the cutoff.

    A mailbox that stays full, or a relay that keeps deferring one address, must not hold the
    run, and with it every later digest, open forever. The subscriber keeps their status:
    a deferral is not a bounce. Returns how many deliveries were given up.
    """
    now = utcnow()
    with writing(store) as session:
        started = session.execute(
            select(_R.c.started_at).where(_R.c.id == run_id)
        ).scalar_one_or_none()
        if started is None or started >= started_before:
            return 0
        result = session.execute(
            update(_D)
            .where(_D.c.run_id == run_id, _D.c.status == D_PENDING, _D.c.attempts > 0)
            .values(
                status=D_FAILED,
                last_reply=literal("gave up after retrying: ") + func.coalesce(_D.c.last_reply, ""),
                claimed_by=None,
                updated_at=now,
            )
        )
        return int(result.rowcount or 0)


def skip_segment(store: Store, segment_id: int, reason: str) -> int:
    """Skip every open delivery of a segment (its posts are gone); returns how many."""
    with writing(store) as session:
        result = session.execute(
            update(_D)
            .where(_D.c.segment_id == segment_id, _D.c.status.in_((D_PENDING, D_SENDING)))
            .values(status=D_SKIPPED, claimed_by=None, last_reply=reason, updated_at=utcnow())
        )
        return int(result.rowcount)


def outlook(
    session: Session, run_id: int, worker_id: str, exclude: Collection[int] = ()
) -> Outlook:
    """What is left for a sender with nothing to claim: wait for retries, others, or stop."""
    pending = select(func.count(), func.min(_D.c.next_attempt_at)).where(
        _D.c.run_id == run_id, _D.c.status == D_PENDING
    )
    if exclude:
        pending = pending.where(_D.c.id.not_in(list(exclude)))
    waiting, next_due = session.execute(pending).one()
    others = session.execute(
        select(func.count()).where(
            _D.c.run_id == run_id, _D.c.status == D_SENDING, _D.c.claimed_by != worker_id
        )
    ).scalar_one()
    if next_due is not None and next_due.tzinfo is None:
        next_due = next_due.replace(tzinfo=utcnow().tzinfo)
    return Outlook(int(waiting), next_due, int(others))


def table_counts(session: Session) -> dict[str, int]:
    """Row counts of the outbox tables (for --dry-run checks and diagnostics)."""
    return {
        t.__tablename__: int(session.execute(select(func.count()).select_from(t)).scalar_one())
        for t in (Run, Segment, Delivery, SentPost, Worker, DigestState, Subscriber)
    }
