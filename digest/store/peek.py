"""Read-only looks into an SQLite store through the standard library, without SQLAlchemy.

`digest posts` needs only the ids an earlier run sent; importing SQLAlchemy and the models costs
~0.3 s, most of such a command's start. peek answers from an SQLite file at the newest schema
revision with one query; for anything else (PostgreSQL, an older schema, a URL with options, a
file it cannot read) it answers None and the caller opens the store, which migrates as always.
"""

from __future__ import annotations

import os
import re
import sqlite3
from contextlib import closing
from functools import cache
from pathlib import Path
from urllib.parse import quote

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
# A migration file: versions/NNNN_what.py, whose revision is NNNN (tests/store hold them to it).
_MIGRATION_FILE = re.compile(r"(\d{4})_\w+\.py")
_SQLITE_FILE = "sqlite:////"  # the loader makes every SQLite file URL absolute


@cache
def head_revision() -> str:
    """The newest revision this version of digest knows: its newest migration file's number
    (one linear chain, numbered in order; the tests check it is Alembic's head)."""
    numbers = [
        found.group(1)
        for name in os.listdir(MIGRATIONS_DIR / "versions")
        if (found := _MIGRATION_FILE.fullmatch(name))
    ]
    if not numbers:  # pragma: no cover - the package always ships 0001
        raise RuntimeError(f"no migrations in {MIGRATIONS_DIR}")
    return max(numbers)


def sqlite_file(url: str) -> Path | None:
    """The file of a plain SQLite file URL; None for anything peek leaves to the store."""
    if not url.startswith(_SQLITE_FILE) or any(c in url for c in "?%#"):
        return None
    return Path(url[len(_SQLITE_FILE) - 1 :])


def sent_post_ids(url: str, digest: str) -> set[str] | None:
    """Ids of posts an earlier run of `digest` included, read without SQLAlchemy; None when
    only the store can tell (then open it: the same answer, after any migration)."""
    path = sqlite_file(url)
    if path is None:
        return None
    if not path.exists():
        return set()  # no database yet: no run has sent anything
    try:
        # mode=ro: a look never creates, migrates or writes the file. closing(): sqlite3's own
        # `with` ends a transaction, it does not close the connection.
        uri = f"file:{quote(str(path))}?mode=ro"
        with closing(sqlite3.connect(uri, uri=True, timeout=30)) as db:
            revision = db.execute("SELECT version_num FROM alembic_version").fetchall()
            if revision != [(head_revision(),)]:
                return None
            rows = db.execute("SELECT post_id FROM sent_posts WHERE digest = ?", (digest,))
            return {str(post_id) for (post_id,) in rows}
    except sqlite3.Error:
        return None
