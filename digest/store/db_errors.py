"""Database failures as our errors: an unreachable, locked or vanished database is one line.

Every store module wraps its connections in db_errors; every message shows a URL via masked_url.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import unquote

from sqlalchemy import exc

from digest.errors import DatabaseError, DatabaseGoneError, escape_controls

# `postgresql://`, and its typos `postgresql//`, `postgresql:/` don't count: only a real `//`.
_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:?//")
_SECRET_PARAM = re.compile(r"([?&;](?:password|passwd|pwd|pass|sslpassword)=)[^&;#]*", re.I)
_HOST_PORT = re.compile(r"([^/?#\[\]:]*):([^/?#]*)")


def masked_url(url: str) -> str:
    """The database URL for a message: any password hidden, whatever the URL's shape.

    Never raises and never echoes a malformed URL raw: everything between the first `:` of the
    user part and the last `@` is hidden (a password may hold `@`), so are `password=` query
    values, and a non-numeric "port" with no `@` (a password whose `@host` was forgotten).
    """
    text = _SECRET_PARAM.sub(r"\1***", escape_controls(url))
    scheme = _SCHEME.match(text)
    start = scheme.end() if scheme else 0
    at = text.rfind("@", start)
    if at >= 0:
        user, colon, _password = text[start:at].partition(":")
        return text[:start] + user + (":***" if colon else "") + text[at:]
    host_port = _HOST_PORT.match(text, start)
    if host_port and not host_port.group(2).isdigit():
        return text[:start] + host_port.group(1) + ":***" + text[host_port.end() :]
    return text


def url_password(url: str) -> str:
    """The password part of `url` as masked_url finds it ("" when there is none)."""
    scheme = _SCHEME.match(url)
    start = scheme.end() if scheme else 0
    at = url.rfind("@", start)
    return url[start:at].partition(":")[2] if at >= 0 else ""


def _reason(url: str, error: BaseException) -> str:
    """The first line of the driver's message, with the URL's password scrubbed from it."""
    orig = getattr(error, "orig", None)
    text = str(orig or error).strip()
    reason = text.splitlines()[0] if text else type(error).__name__
    password = url_password(url)
    for secret in {password, unquote(password)}:
        if len(secret) >= 3:
            reason = reason.replace(secret, "***")
    return reason


_MISSING_TABLE = re.compile(r'^no such table: (\S+)|^relation "([^"]+)" does not exist')


def _missing_table(error: BaseException) -> str | None:
    """The table a query needed that is gone (SQLite, or PostgreSQL's 42P01), else None."""
    orig = getattr(error, "orig", None) or error
    if getattr(orig, "sqlstate", None) not in (None, "42P01"):
        return None
    match = _MISSING_TABLE.match(str(orig).strip())
    return (match.group(1) or match.group(2)) if match else None


def database_error(url: str, error: BaseException, doing: str = "") -> DatabaseError:
    """One line for a database failure: the URL masked, the driver's reason, no secret."""
    shown = masked_url(url)
    table = _missing_table(error)
    if table is not None:
        return DatabaseGoneError(
            f"database {shown}: table {table} is gone; was the database deleted, replaced or "
            "emptied while digest was running?",
            hint="restore it from a backup; `digest db upgrade` makes empty tables",
        )
    return DatabaseError(f"database {shown}: {doing}{_reason(url, error)}")


@contextmanager
def db_errors(url: str) -> Iterator[None]:
    """Unreachable, locked, read-only or vanished: the database's failure as one DatabaseError."""
    try:
        yield
    except exc.OperationalError as error:
        raise database_error(url, error) from error
    except exc.ProgrammingError as error:
        if _missing_table(error) is None:
            raise  # a mistake in our SQL: a bug, with its traceback
        raise database_error(url, error) from error
