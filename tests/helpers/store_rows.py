"""Row counts of the outbox tables: what a dry run or a preview must leave as it was."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from digest.store.models import Delivery, DigestState, Run, Segment, SentPost, Subscriber, Worker


def table_counts(session: Session) -> dict[str, int]:
    """Row counts of the outbox tables (for --dry-run checks and diagnostics)."""
    return {
        t.__tablename__: int(session.execute(select(func.count()).select_from(t)).scalar_one())
        for t in (Run, Segment, Delivery, SentPost, Worker, DigestState, Subscriber)
    }
