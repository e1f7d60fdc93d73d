"""Create or migrate the schema (placeholder: create_all until the Alembic migrations land)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from digest.store import _db_errors
from digest.store.models import Base

if TYPE_CHECKING:
    from digest.store import Store


def upgrade_schema(store: Store) -> None:
    with _db_errors(store.url):
        Base.metadata.create_all(store.engine)
