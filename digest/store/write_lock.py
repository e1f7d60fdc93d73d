"""Short write transactions on a Core connection, and the per-engine SQLite write lock.

store.runs, store.claims, store.workers ─► store.write_lock: short writes take turns here.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import Connection, Engine

from digest.store import Store
from digest.store.db_errors import db_errors

# The outbox talks to the database three ways: ORM sessions (Store.session and
# Store.write_transaction) for whole-run work, Core connections (`writing`) for the short writes
# of the hot path, and the driver connection (claims.Recorder) for recording each sent message.
# On SQLite the threads of one process take turns on a lock before the last two: waiting in
# SQLite's busy handler sleeps in steps of up to 100 ms, while a lock hands over at once.
_SQLITE_LOCKS: weakref.WeakKeyDictionary[Engine, threading.Lock] = weakref.WeakKeyDictionary()
_WRITE_ENGINES: weakref.WeakKeyDictionary[Engine, Engine] = weakref.WeakKeyDictionary()
_GUARD = threading.Lock()


def sqlite_lock(engine: Engine) -> threading.Lock:
    """The lock the writing threads of this process take before writing to a SQLite engine."""
    with _GUARD:
        return _SQLITE_LOCKS.setdefault(engine, threading.Lock())


@contextmanager
def writing(store: Store) -> Iterator[Connection]:
    """A short write transaction on a Core connection (SQLite: BEGIN IMMEDIATE)."""
    engine = store.engine
    if store.dialect != "sqlite":
        with db_errors(store.url), engine.begin() as conn:
            yield conn
        return
    lock = sqlite_lock(engine)
    with _GUARD:
        write_engine = _WRITE_ENGINES.get(engine)
        if write_engine is None:
            write_engine = _WRITE_ENGINES[engine] = engine.execution_options(digest_write=True)
    with lock, db_errors(store.url), write_engine.begin() as conn:
        yield conn
