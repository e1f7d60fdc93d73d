"""Read-only queries over past runs that commands other than `send` need.

store ─► cli (`digest posts`): which posts earlier runs of a digest already included.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from digest.store.models import SentPost


def sent_post_ids(session: Session, digest: str) -> set[str]:
    """The ids (source paths) of every post a run of `digest` has already included."""
    return set(session.scalars(select(SentPost.post_id).where(SentPost.digest == digest)))


def sent_post_runs(session: Session, digest: str) -> dict[str, int]:
    """Each post an earlier run of `digest` included, with the id of that run."""
    rows = session.execute(
        select(SentPost.post_id, SentPost.run_id).where(SentPost.digest == digest)
    )
    return {str(row.post_id): int(row.run_id) for row in rows}
