"""Leases (one scheduler per database) and each digest's stored next fire time.

store is the only home of SQL; the scheduler calls these to take its lease and survive restarts.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from digest.store.models import DigestState, Lease

if TYPE_CHECKING:
    from digest.store import Store


@dataclass(frozen=True)
class LeaseInfo:
    """Who holds a named lease, and until when (aware UTC)."""

    name: str
    holder: str
    expires_at: datetime


@dataclass(frozen=True)
class FireState:
    """A digest's stored next fire time and the schedule it was computed from."""

    digest: str
    next_fire_at: datetime | None
    schedule: str | None


def _now(now: datetime | None) -> datetime:
    return datetime.now(UTC) if now is None else now.astimezone(UTC)


def _locked_lease(session: Session, store: Store, name: str) -> Lease | None:
    query = select(Lease).where(Lease.name == name)
    if store.dialect == "postgresql":
        query = query.with_for_update()
    return session.scalars(query).first()


def acquire_lease(
    store: Store, name: str, holder: str, *, ttl: timedelta, now: datetime | None = None
) -> LeaseInfo:
    """Take the lease if it is free, expired or already ours; return whoever holds it after."""
    current = _now(now)
    try:
        with store.write_transaction() as session:
            lease = _locked_lease(session, store, name)
            if lease is None:
                lease = Lease(name=name, holder=holder, expires_at=current + ttl)
                session.add(lease)
            elif lease.holder == holder or lease.expires_at <= current:
                lease.holder = holder
                lease.expires_at = current + ttl
            return LeaseInfo(lease.name, lease.holder, lease.expires_at)
    except IntegrityError:
        # Two first-ever acquisitions raced on PostgreSQL: the other insert won.
        info = read_lease(store, name)
        if info is None:
            raise
        return info


def renew_lease(
    store: Store, name: str, holder: str, *, ttl: timedelta, now: datetime | None = None
) -> LeaseInfo | None:
    """Extend our lease; None when someone else holds it now (ours was lost)."""
    current = _now(now)
    with store.write_transaction() as session:
        lease = _locked_lease(session, store, name)
        if lease is None:
            # Released or deleted behind our back: take it again, nobody else has it.
            lease = Lease(name=name, holder=holder, expires_at=current + ttl)
            session.add(lease)
        elif lease.holder != holder:
            return None
        else:
            lease.expires_at = current + ttl
        return LeaseInfo(lease.name, lease.holder, lease.expires_at)


def release_lease(store: Store, name: str, holder: str) -> None:
    """Give the lease up (only if it is still ours)."""
    with store.write_transaction() as session:
        session.execute(delete(Lease).where(Lease.name == name, Lease.holder == holder))


def read_lease(store: Store, name: str) -> LeaseInfo | None:
    """The lease as stored, expired or not."""
    with store.session() as session:
        lease = session.get(Lease, name)
        return None if lease is None else LeaseInfo(lease.name, lease.holder, lease.expires_at)


def load_fire_state(store: Store, digest: str) -> FireState:
    """The stored next fire time and schedule of a digest (both None if never scheduled)."""
    with store.session() as session:
        state = session.get(DigestState, digest)
        if state is None:
            return FireState(digest, None, None)
        return FireState(digest, state.next_fire_at, state.schedule)


def save_fire_state(store: Store, digest: str, *, schedule: str, next_fire_at: datetime) -> None:
    """Record the next fire time of a digest and the schedule it came from."""
    for attempt in (1, 2):
        try:
            with store.write_transaction() as session:
                query = select(DigestState).where(DigestState.digest == digest)
                if store.dialect == "postgresql":
                    query = query.with_for_update()
                state = session.scalars(query).first()
                if state is None:
                    session.add(
                        DigestState(digest=digest, next_fire_at=next_fire_at, schedule=schedule)
                    )
                else:
                    state.next_fire_at = next_fire_at
                    state.schedule = schedule
            return
        except IntegrityError:
            # A send created the digest's row at the same moment (PostgreSQL): update it.
            if attempt == 2:
                raise
