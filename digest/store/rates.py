"""Rates shared by every sender process on every machine: slots booked in the database.

delivery ─► store.rates: a sender books a few slots at a time (one short transaction, the rows
locked), so the limit holds over all of them; the clock is the database's (PostgreSQL) or this
machine's (SQLite, one machine).

A pace (per second, per minute) spaces slots evenly, with bursts of at most `burst` slots; a
quota (per hour, per day) counts booked messages per slice of its window (a sixtieth), and a
window is counted from the slice that holds its start, so no window of that length ever holds
more than the limit.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import NamedTuple

from sqlalchemy import Connection, Table, bindparam, insert, select, text, update

from digest.store import Store
from digest.store.models import (
    D_PENDING,
    D_SENDING,
    RateCount,
    RatePace,
    deliveries_table,
    utcnow,
)
from digest.store.write_lock import writing

SLICES = 60  # a quota's window in slices: at most 1/60 of a window's sending waits needlessly

_paces: Table = RatePace.__table__  # type: ignore[assignment]
_counts: Table = RateCount.__table__  # type: ignore[assignment]


class Pace(NamedTuple):
    key: str
    interval: float  # seconds between slots, on average
    burst: int  # slots that may go at once (1: evenly spaced)
    jitter: int = 0  # slots the interval leaves room for being used late


class Quota(NamedTuple):
    key: str
    limit: int
    window: float  # seconds


@dataclass(frozen=True)
class Booking:
    """Slots booked: each as seconds from now until it may be used."""

    delays: list[float]
    full_for: float | None = None  # a quota is used up: seconds until it frees a slot


def _now(conn: Connection, dialect: str) -> float:
    if dialect == "postgresql":
        return float(
            conn.execute(text("SELECT extract(epoch FROM clock_timestamp())")).scalar_one()
        )
    return time.time()


def _lock_rows(conn: Connection, dialect: str, keys: list[str]) -> dict[str, float]:
    """Each key's pace row, made if missing and locked until the transaction ends."""
    stmt = select(_paces.c.key, _paces.c.next_free).where(_paces.c.key.in_(keys))
    if dialect == "postgresql":
        stmt = stmt.with_for_update()
    rows = {str(k): float(v) for k, v in conn.execute(stmt)}
    missing = [k for k in keys if k not in rows]
    if missing:
        if dialect == "postgresql":
            from sqlalchemy.dialects.postgresql import insert as pg_insert

            conn.execute(
                pg_insert(_paces)
                .values([{"key": k, "next_free": 0.0} for k in missing])
                .on_conflict_do_nothing()
            )
            rows = {str(k): float(v) for k, v in conn.execute(stmt)}
        else:
            conn.execute(insert(_paces), [{"key": k, "next_free": 0.0} for k in missing])
            rows.update(dict.fromkeys(missing, 0.0))
    return rows


def book(store: Store, paces: Sequence[Pace], quotas: Sequence[Quota], want: int) -> Booking:
    """Book up to `want` slots that keep every pace and quota, over every sender."""
    keys = sorted({p.key for p in paces} | {q.key for q in quotas})  # one lock order for all
    if not keys or want <= 0:
        return Booking([0.0] * max(want, 0))
    with writing(store) as conn:
        dialect = store.dialect
        next_free = _lock_rows(conn, dialect, keys)
        now = _now(conn, dialect)
        granted, full_for = want, None
        for quota in quotas:
            room, frees_in = _quota_room(conn, quota, now)
            if room < granted:
                granted = max(room, 0)
                if room <= 0:
                    full_for = frees_in if full_for is None else max(full_for, frees_in)
        if granted == 0:
            return Booking([], full_for)
        slots = [now] * granted
        for pace in paces:
            free = next_free[pace.key]
            tolerance = (pace.burst - 1) * pace.interval
            for i in range(granted):
                slot = max(slots[i], free - tolerance)
                free = max(free, slot) + pace.interval
                slots[i] = slot
            next_free[pace.key] = free
        for i in range(1, granted):  # in order: a later slot never before an earlier one
            slots[i] = max(slots[i], slots[i - 1])
        for pace in paces:
            conn.execute(
                update(_paces).where(_paces.c.key == pace.key).values(next_free=next_free[pace.key])
            )
        for quota in quotas:
            _count(conn, dialect, quota, now, granted)
    return Booking([s - now for s in slots], None)


def _width(quota: Quota) -> float:
    return quota.window / SLICES


def _quota_room(conn: Connection, quota: Quota, now: float) -> tuple[int, float]:
    """(messages the quota still allows now, seconds until its oldest counted slice leaves)."""
    width = _width(quota)
    current = math.floor(now / width)
    first = current - SLICES  # the slice holding the start of the window that ends now
    rows = conn.execute(
        select(_counts.c.slice, _counts.c.booked).where(
            _counts.c.key == quota.key, _counts.c.slice >= first
        )
    ).all()
    used = sum(int(r.booked) for r in rows)
    oldest = min((int(r.slice) for r in rows if r.booked), default=current)
    return quota.limit - used, max((oldest + SLICES + 1) * width - now, 0.0)


def _count(conn: Connection, dialect: str, quota: Quota, now: float, booked: int) -> None:
    current = math.floor(now / _width(quota))
    done = conn.execute(
        update(_counts)
        .where(_counts.c.key == quota.key, _counts.c.slice == current)
        .values(booked=_counts.c.booked + booked)
    )
    if not done.rowcount:
        conn.execute(insert(_counts).values(key=quota.key, slice=current, booked=booked))
    # Slices older than any window: gone, now and then.
    if current % 16 == 0:
        conn.execute(
            _counts.delete().where(
                _counts.c.key == quota.key, _counts.c.slice < current - 2 * SLICES
            )
        )


def put_back(
    store: Store, run_id: int, worker_id: str, delays: Sequence[tuple[int, float]], reply: str
) -> None:
    """Claimed deliveries back to pending, each due after its delay, no attempt counted: the
    relay throttled, or their destination has no slot before then."""
    if not delays:
        return
    now = utcnow()
    stmt = (
        update(deliveries_table)
        .where(
            deliveries_table.c.id == bindparam("did"),
            deliveries_table.c.run_id == run_id,
            deliveries_table.c.status == D_SENDING,
            deliveries_table.c.claimed_by == worker_id,
        )
        .values(
            status=D_PENDING,
            claimed_by=None,
            claimed_at=None,
            next_attempt_at=bindparam("due"),
            last_reply=reply,
            updated_at=now,
        )
    )
    params = [{"did": i, "due": now + timedelta(seconds=max(d, 0.0))} for i, d in delays]
    with writing(store) as conn:
        conn.execute(stmt, params)
