"""Live workers: registration, heartbeats, and taking over the claims of dead senders.

delivery and scheduler ─► store.workers: a worker's id (host:pid:random) is made here, once.
"""

from __future__ import annotations

import os
import socket
import uuid
from datetime import datetime, timedelta
from pathlib import Path

from sqlalchemy import Connection, bindparam, delete, insert, select, update

from digest.errors import DatabaseGoneError
from digest.settings import MAX_MARK_WINDOW
from digest.store import Store
from digest.store.journal import JournalEntry, find_journals, read_journals
from digest.store.models import (
    D_PENDING,
    D_SENDING,
    D_SENT,
    Worker,
    deliveries_table,
    utcnow,
    workers_table,
)
from digest.store.write_lock import writing

# A sender that has not beaten its heartbeat for this long is taken for dead: its claimed
# (in-flight) deliveries are taken over by the next sender.
LEASE_TIMEOUT = timedelta(seconds=60)
HEARTBEAT_EVERY = 10.0  # seconds
HOST = socket.gethostname()
# last_reply of a delivery that was in flight when its sender died (until it is sent again).
IN_FLIGHT_MARK = "in flight when its sender stopped; sending again"

# Who else holds claims on a run: the candidates for being dead.
_CLAIMERS = (
    select(deliveries_table.c.claimed_by)
    .where(
        deliveries_table.c.run_id == bindparam("rid"),
        deliveries_table.c.status == D_SENDING,
        deliveries_table.c.claimed_by != bindparam("wid"),
    )
    .distinct()
)


def new_worker_id() -> str:
    """A fresh id for this process as a worker or lease holder: host:pid:random."""
    return f"{HOST}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def register_worker(store: Store, kind: str = "sender", *, mark_window: int = 1) -> str:
    """Record this process as a live worker; returns its id (host:pid:random).

    mark_window: how many sent messages per connection it may hold unrecorded (a sender's
    delivery.mark_window), so whoever takes over its claims counts as many as possibly sent.
    """
    worker_id = new_worker_id()
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
                mark_window=mark_window,
            )
        )
    return worker_id


def heartbeat(store: Store, worker_id: str) -> None:
    """Tell other senders this worker is alive (its claims hold)."""
    with writing(store) as conn:
        conn.execute(
            update(workers_table)
            .where(workers_table.c.id == worker_id)
            .values(heartbeat_at=utcnow())
        )


def unregister_worker(store: Store, worker_id: str) -> None:
    """Remove the worker row (its claims, if any are left, become takeable at once)."""
    try:
        with store.write_transaction() as session:
            session.execute(delete(Worker).where(Worker.id == worker_id))
    except DatabaseGoneError:
        pass  # the table went with the database: no row is left to remove, the run says why


def _pid_alive(pid: int) -> bool:
    """Whether a process of this machine runs (a zombie, killed and not yet reaped by its
    parent, does not: a `--workers` process killed outright is one until the pool reaps it)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # Linux: the state is the field after the command's closing parenthesis
        stat = Path(f"/proc/{pid}/stat").read_bytes()
    except OSError:
        return True
    return stat[stat.rfind(b")") + 2 : stat.rfind(b")") + 3] != b"Z"


def _dead_claimers(conn: Connection, run_id: int, worker_id: str, now: datetime) -> list[str]:
    """Other workers holding claims on the run that are dead: silent too long, or gone here."""
    rows = conn.scalars(_CLAIMERS, {"rid": run_id, "wid": worker_id})
    claimers = [str(c) for c in rows if c is not None]
    if not claimers:
        return []
    workers = {
        str(worker.id): worker
        for worker in conn.execute(
            select(
                workers_table.c.id,
                workers_table.c.host,
                workers_table.c.pid,
                workers_table.c.heartbeat_at,
            ).where(workers_table.c.id.in_(claimers))
        )
    }
    dead = []
    for claimer in claimers:
        worker = workers.get(claimer)
        if (
            worker is None
            or worker.heartbeat_at < now - LEASE_TIMEOUT
            or (str(worker.host) == HOST and not _pid_alive(int(worker.pid)))
        ):
            dead.append(claimer)
    return dead


def take_over_dead_claims(
    conn: Connection, run_id: int, worker_id: str, now: datetime
) -> list[Path]:
    """Give back to pending what dead senders held of the run (inside a claim's transaction).

    Returns the dead senders' journals it applied: the caller removes them (store.journal's
    remove_journals) once the transaction has committed.
    """
    dead = _dead_claimers(conn, run_id, worker_id, now)
    if not dead:
        return []
    url = conn.engine.url.render_as_string()
    journals = {claimer: find_journals(url, claimer) for claimer in dead}
    for claimer, paths in journals.items():
        if paths:
            _apply_journal(conn, claimer, read_journals(paths), now)
    _take_over(conn, run_id, dead, now, journaled={c for c, paths in journals.items() if paths})
    return [path for paths in journals.values() for path in paths]


_JOURNALED_SENT = (
    update(deliveries_table)
    .where(
        deliveries_table.c.id == bindparam("did"),
        deliveries_table.c.status == D_SENDING,
        deliveries_table.c.claimed_by == bindparam("dead"),
    )
    .values(
        status=D_SENT,
        attempts=deliveries_table.c.attempts + 1,
        message_id=bindparam("mid"),
        last_reply=bindparam("reply"),
        sent_at=bindparam("at"),
        claimed_by=None,
        next_attempt_at=None,
        updated_at=bindparam("now"),
    )
)


def _apply_journal(conn: Connection, dead: str, entries: list[JournalEntry], now: datetime) -> None:
    """Record as sent what a dead sender's journal says the relay accepted (and the database
    did not yet hold: only rows it still had claimed change)."""
    if entries:
        conn.execute(
            _JOURNALED_SENT,
            [
                {
                    "did": e.delivery_id,
                    "dead": dead,
                    "mid": e.message_id,
                    "reply": e.reply,
                    "at": e.sent_at,
                    "now": now,
                }
                for e in entries
            ],
        )


def _take_over(
    conn: Connection, run_id: int, dead: list[str], now: datetime, *, journaled: set[str]
) -> None:
    """Put every delivery dead senders held back to pending, marking those maybe in flight."""
    in_flight = _maybe_in_flight(conn, run_id, dead, journaled)
    conn.execute(
        update(deliveries_table)
        .where(
            deliveries_table.c.run_id == run_id,
            deliveries_table.c.status == D_SENDING,
            deliveries_table.c.claimed_by.in_(dead),
        )
        .values(status=D_PENDING, claimed_by=None, claimed_at=None, updated_at=now)
    )
    if in_flight:
        # Only rows still waiting: on PostgreSQL another thread may have taken these over and
        # claimed them meanwhile (its claim counted them); marking them again would count twice.
        conn.execute(
            update(deliveries_table)
            .where(
                deliveries_table.c.id.in_(list(in_flight)),
                deliveries_table.c.status == D_PENDING,
                deliveries_table.c.claimed_by.is_(None),
            )
            .values(last_reply=IN_FLIGHT_MARK)
        )


def _maybe_in_flight(
    conn: Connection, run_id: int, dead: list[str], journaled: set[str]
) -> set[int]:
    """Of the deliveries dead senders held, those that may have reached the server.

    A sender's thread claims a batch (one claimed_at) and sends it in id order, recording the
    outcomes a window (its mark_window) at a time, before the body after the window goes: so
    only the lowest `mark_window` ids still held from each batch were possibly sent; the others
    were never tried. A worker row that is gone counts with the largest window there can be.
    A sender whose journal was read (`journaled`, already applied) counts one: its journal
    holds every message the relay accepted, so only the one on the wire is left.
    """
    windows = {
        str(row.id): row.mark_window or 1  # NULL: a sender from before windows, one at a time
        for row in conn.execute(
            select(workers_table.c.id, workers_table.c.mark_window).where(
                workers_table.c.id.in_(dead)
            )
        )
    }
    windows.update(dict.fromkeys(journaled, 1))
    held = conn.execute(
        select(deliveries_table.c.id, deliveries_table.c.claimed_by, deliveries_table.c.claimed_at)
        .where(
            deliveries_table.c.run_id == run_id,
            deliveries_table.c.status == D_SENDING,
            deliveries_table.c.claimed_by.in_(dead),
        )
        .order_by(deliveries_table.c.id)
    )
    taken: dict[tuple[str, datetime], int] = {}
    in_flight: set[int] = set()
    for row in held:
        batch = (str(row.claimed_by), row.claimed_at)
        if taken.get(batch, 0) < windows.get(batch[0], MAX_MARK_WINDOW):
            taken[batch] = taken.get(batch, 0) + 1
            in_flight.add(int(row.id))
    return in_flight
