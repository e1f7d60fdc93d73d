"""The store: subscribers, runs, deliveries and sent posts, in SQLite (default) or PostgreSQL.

store is the only home of SQL (and of SQLAlchemy); delivery, cli, schedule and web call its
functions. `Store`, `open_store` and `masked_url` load SQLAlchemy (~0.3 s), so this package
hands them out on first use: a command that only looks (`digest posts`) can ask `store.peek`
and start without it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from digest.store.db_errors import masked_url
    from digest.store.engine import Store, open_store

__all__ = ["Store", "masked_url", "open_store"]


def __getattr__(name: str) -> Any:
    """`from digest.store import Store` loads the engine (and SQLAlchemy) here, when asked."""
    if name in ("Store", "open_store"):
        from digest.store import engine

        return getattr(engine, name)
    if name == "masked_url":
        from digest.store.db_errors import masked_url

        return masked_url
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
