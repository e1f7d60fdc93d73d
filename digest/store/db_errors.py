"""Database failures as our errors: an unreachable or locked database is one DatabaseError line.

Every store module wraps its connections in db_errors; messages show the URL via masked_url.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import exc

from digest.errors import DatabaseError


def masked_url(url: str) -> str:
    """The database URL with any password replaced, for messages."""
    return re.sub(r"(://[^:/@]+:)[^@]*@", r"\1***@", url)


@contextmanager
def db_errors(url: str) -> Iterator[None]:
    """Turn an OperationalError (unreachable, locked, read-only) into a DatabaseError line."""
    try:
        yield
    except exc.OperationalError as error:
        reason = str(error.orig).strip().splitlines()[0] if error.orig else str(error)
        raise DatabaseError(f"database {masked_url(url)}: {reason}") from error
