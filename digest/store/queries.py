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
