"""The archive of sent digests: each run's all-categories email, stored once when it starts.

delivery stores a run's render here; the web's /archive pages and Atom feed read it back.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from digest.store import Store
from digest.store.models import Run, RunArchive, utcnow


@dataclass(frozen=True)
class ArchivedRun:
    """One archived run: what /archive lists (html is "" in listings)."""

    run_id: int
    digest: str
    subject: str
    as_of: datetime
    created_at: datetime
    html: str = ""


def is_archived(store: Store, run_id: int) -> bool:
    """True when the run's render is stored."""
    with store.session() as session:
        return session.get(RunArchive, run_id) is not None


def save_archive(store: Store, run_id: int, digest: str, subject: str, html: str) -> None:
    """Store a run's render (the first one stays: a run's email does not change)."""
    try:
        with store.write_transaction() as session:
            if session.get(RunArchive, run_id) is None:
                session.add(
                    RunArchive(
                        run_id=run_id,
                        digest=digest,
                        subject=subject,
                        html=html,
                        created_at=utcnow(),
                    )
                )
    except IntegrityError:
        pass  # PostgreSQL: another sender stored it meanwhile


def archived_runs(store: Store, digest: str | None = None) -> list[ArchivedRun]:
    """Archived runs (of one digest, or all), newest first, without their HTML."""
    stmt = (
        select(
            RunArchive.run_id,
            RunArchive.digest,
            RunArchive.subject,
            Run.as_of,
            RunArchive.created_at,
        )
        .join(Run, Run.id == RunArchive.run_id)
        .order_by(Run.as_of.desc(), RunArchive.run_id.desc())
    )
    if digest is not None:
        stmt = stmt.where(RunArchive.digest == digest)
    with store.session() as session:
        return [
            ArchivedRun(row.run_id, row.digest, row.subject, row.as_of, row.created_at)
            for row in session.execute(stmt)
        ]


def archived_run(store: Store, digest: str, run_id: int) -> ArchivedRun | None:
    """One archived run of `digest` with its HTML, or None."""
    stmt = (
        select(RunArchive, Run.as_of)
        .join(Run, Run.id == RunArchive.run_id)
        .where(RunArchive.run_id == run_id, RunArchive.digest == digest)
    )
    with store.session() as session:
        row = session.execute(stmt).one_or_none()
        if row is None:
            return None
        archive, as_of = row
        return ArchivedRun(
            archive.run_id, archive.digest, archive.subject, as_of, archive.created_at, archive.html
        )
