"""The bounce mailbox over IMAP (bounces.imap): read what is new, then move or flag it as done.

imap ─► mail ─► policy; TLS is always verified, and a message is marked only once it was recorded.
"""

from __future__ import annotations

import imaplib
import re
import ssl
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from digest.errors import MailboxError

# The keyword a processed message gets when no `processed_folder` is configured.
PROCESSED_KEYWORD = "$DigestProcessed"
_SIZE = re.compile(rb"RFC822\.SIZE (\d+)")


@dataclass(frozen=True)
class ImapAccount:
    """Where the bounce mailbox is and how to log in (the password never goes into messages)."""

    host: str
    username: str
    password: str
    port: int = 993
    security: Literal["ssl", "starttls"] = "ssl"
    folder: str = "INBOX"
    processed_folder: str | None = None  # move done messages there; else flag them
    ca_file: Path | None = None
    timeout: float = 30.0

    @property
    def where(self) -> str:
        return f"IMAP {self.host}:{self.port}"


@dataclass(frozen=True)
class ImapMessage:
    """One message from the mailbox and its UID (to mark it done after it was recorded);
    `raw` is None for a message over the size cap (its content is never fetched)."""

    uid: str
    raw: bytes | None
    size: int


def _taken(data: Sequence[object]) -> bool:
    """A NO that says the message is gone: another reader moved or expunged it (RFC 5530)."""
    text = b" ".join(d for d in data if isinstance(d, bytes)).upper()
    return b"EXPUNGEISSUED" in text or b"NO LONGER EXIST" in text


def _context(account: ImapAccount) -> ssl.SSLContext:
    cafile = str(account.ca_file) if account.ca_file else None
    return ssl.create_default_context(cafile=cafile)


def _quote(mailbox: str) -> str:
    return '"' + mailbox.replace("\\", "\\\\").replace('"', '\\"') + '"'


class ImapMailbox:
    """A logged-in session on the bounce folder."""

    def __init__(self, account: ImapAccount, connection: imaplib.IMAP4) -> None:
        self.account = account
        self._imap = connection
        self._moved = False
        # Servers announce more (MOVE) once logged in than in their greeting.
        status, data = connection.capability()
        words = data[-1] if status == "OK" and data and isinstance(data[-1], bytes) else b""
        self._capabilities = {w.upper() for w in words.decode("ascii", "replace").split()}

    def _check(self, what: str, result: tuple[str, Sequence[object]]) -> list[object]:
        status, data = result
        if status != "OK":
            detail = b" ".join(d for d in data if isinstance(d, bytes)).decode("utf-8", "replace")
            raise MailboxError(f"{self.account.where}: {what} refused: {detail}")
        return list(data)

    def unprocessed(self, max_bytes: int) -> Iterator[ImapMessage]:
        """The messages not yet marked done, oldest first (their content, unread-flag kept);
        one over `max_bytes` comes without its content. A message another reader took since
        the search (moved, expunged) is skipped."""
        # With a processed folder, done messages have left this one.
        done = self.account.processed_folder
        criteria = "ALL" if done else f"NOT KEYWORD {PROCESSED_KEYWORD}"
        data = self._check("UID SEARCH", self._imap.uid("SEARCH", criteria))
        uids = data[0].decode("ascii").split() if data and isinstance(data[0], bytes) else []
        for uid in uids:
            size = self._size(uid)
            if size is None:
                continue
            if size > max_bytes:
                yield ImapMessage(uid, None, size)
                continue
            fetched = self._fetch(uid, "(BODY.PEEK[])")
            for item in fetched:
                if isinstance(item, tuple) and len(item) == 2 and isinstance(item[1], bytes):
                    yield ImapMessage(uid, item[1], size)
                    break

    def _size(self, uid: str) -> int | None:
        """RFC822.SIZE of a message; None when it is gone."""
        for item in self._fetch(uid, "(RFC822.SIZE)"):
            text = item[0] if isinstance(item, tuple) else item
            if isinstance(text, bytes) and (match := _SIZE.search(text)):
                return int(match.group(1))
        return None

    def _fetch(self, uid: str, what: str) -> list[object]:
        status, data = self._imap.uid("FETCH", uid, what)
        if status != "OK" and _taken(data):
            return []
        return self._check("UID FETCH", (status, data))

    def mark_done(self, uid: str) -> bool:
        """Move the message to processed_folder (or flag it) so a rerun skips it; False when
        another reader took it first (moved or expunged it: nothing to do)."""
        target = self.account.processed_folder
        if not target:
            flags = f"(\\Seen {PROCESSED_KEYWORD})"
            return self._done("UID STORE", self._imap.uid("STORE", uid, "+FLAGS", flags))
        if "MOVE" in self._capabilities:
            return self._done("UID MOVE", self._imap.uid("MOVE", uid, _quote(target)))
        if not self._done("UID COPY", self._imap.uid("COPY", uid, _quote(target))):
            return False
        self._check("UID STORE", self._imap.uid("STORE", uid, "+FLAGS", "(\\Deleted)"))
        self._moved = True
        return True

    def _done(self, what: str, result: tuple[str, Sequence[object]]) -> bool:
        status, data = result
        if status != "OK" and _taken(data):
            return False
        self._check(what, result)
        return True

    def finish(self) -> None:
        if self._moved:
            self._check("EXPUNGE", self._imap.expunge())


@contextmanager
def open_mailbox(account: ImapAccount) -> Iterator[ImapMailbox]:
    """Connect with verified TLS, log in, select the folder; log out on every path."""
    connection = _connect(account)
    try:
        try:
            connection.login(account.username, account.password)
        except imaplib.IMAP4.error as exc:
            raise MailboxError(
                f"{account.where}: login refused for user {account.username}"
            ) from exc
        mailbox = ImapMailbox(account, connection)
        if account.processed_folder:
            # CREATE fails harmlessly when the folder is there already.
            connection.create(_quote(account.processed_folder))
        mailbox._check(f"SELECT {account.folder}", connection.select(_quote(account.folder)))
        yield mailbox
        mailbox.finish()
    except (imaplib.IMAP4.error, OSError) as exc:
        raise MailboxError(f"{account.where}: {exc}") from exc
    finally:
        with suppress(imaplib.IMAP4.error, OSError):
            connection.logout()  # the server may have gone away; nothing is left to close


def _connect(account: ImapAccount) -> imaplib.IMAP4:
    context = _context(account)
    try:
        if account.security == "ssl":
            return imaplib.IMAP4_SSL(
                account.host, account.port, ssl_context=context, timeout=account.timeout
            )
        connection = imaplib.IMAP4(account.host, account.port, timeout=account.timeout)
        connection.starttls(ssl_context=context)
        return connection
    except ssl.SSLCertVerificationError as exc:
        raise MailboxError(
            f"{account.where}: TLS certificate not trusted ({exc.verify_message})",
            hint="set bounces.imap.ca_file to the CA that signed the server's certificate",
        ) from exc
    except (imaplib.IMAP4.error, OSError) as exc:
        reason = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
        raise MailboxError(f"{account.where}: cannot connect: {reason}") from exc
