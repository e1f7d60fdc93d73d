"""Where bounce mail is read from: a Maildir folder, an mbox file, one message file, or stdin.

sources ─► mail ─► policy; the IMAP mailbox is in bounces.imap, these are the local ones.
"""

from __future__ import annotations

import mailbox
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from digest.errors import BadInputError

STDIN = "-"


def strip_envelope_line(raw: bytes) -> bytes:
    """Drop the `From sender date` line an MTA may put before a piped or single message."""
    if raw.startswith(b"From ") and not raw.startswith(b"From: "):
        return raw.split(b"\n", 1)[1] if b"\n" in raw else b""
    return raw


def is_maildir(path: Path) -> bool:
    return (path / "cur").is_dir() and (path / "new").is_dir()


def read_local(source: str, stdin: BinaryIO) -> Iterator[bytes]:
    """The raw messages in SOURCE: `-` (one message on stdin), a Maildir, an mbox or .eml file."""
    if source == STDIN:
        yield strip_envelope_line(stdin.read())
        return
    path = Path(source)
    try:
        if path.is_dir():
            if not is_maildir(path):
                raise BadInputError(f"{path}: a folder but not a Maildir (it has no cur/ and new/)")
            yield from _maildir(path)
        elif path.is_file():
            yield from _mbox_or_message(path)
        else:
            raise BadInputError(f"{path}: no such Maildir folder or mbox file")
    except OSError as exc:
        raise BadInputError(f"{path}: cannot read: {exc.strerror or exc}") from exc


def _maildir(path: Path) -> Iterator[bytes]:
    folder = mailbox.Maildir(path, factory=None, create=False)
    for key in sorted(folder.iterkeys()):
        try:
            yield folder.get_bytes(key)
        except KeyError:
            continue  # removed by another reader (a mail client) since the listing


def _mbox_or_message(path: Path) -> Iterator[bytes]:
    with path.open("rb") as handle:
        first = handle.read(5)
    if first != b"From ":
        yield strip_envelope_line(path.read_bytes())  # one message, like a saved .eml
        return
    box = mailbox.mbox(path, factory=None, create=False)
    try:
        for key in box.iterkeys():
            yield box.get_bytes(key)
    finally:
        box.close()
