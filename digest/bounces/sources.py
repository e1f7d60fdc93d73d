"""Where bounce mail is read from: a Maildir folder, an mbox file, one message file, or stdin.

sources ─► mail ─► policy; the IMAP mailbox is in bounces.imap, these are the local ones.
"""

from __future__ import annotations

import mailbox
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Protocol

from digest.errors import BadInputError

STDIN = "-"
CHUNK = 1024 * 1024


@dataclass(frozen=True)
class Oversized:
    """A message over bounces.max_message_bytes: not read, counted `ignored`."""

    limit: int


Incoming = bytes | Oversized


class _Readable(Protocol):
    def read(self, size: int = ..., /) -> bytes: ...


def strip_envelope_line(raw: bytes) -> bytes:
    """Drop the `From sender date` line an MTA may put before a piped or single message."""
    if raw.startswith(b"From ") and not raw.startswith(b"From: "):
        return raw.split(b"\n", 1)[1] if b"\n" in raw else b""
    return raw


def is_maildir(path: Path) -> bool:
    return (path / "cur").is_dir() and (path / "new").is_dir()


def read_local(source: str, stdin: BinaryIO, *, max_bytes: int) -> Iterator[Incoming]:
    """The raw messages in SOURCE: `-` (one message on stdin), a Maildir, an mbox or .eml file;
    a message over `max_bytes` is not read (an Oversized stands in for it)."""
    if source == STDIN:
        yield _capped(stdin, max_bytes, drain=True)
        return
    path = Path(source)
    try:
        if path.is_dir():
            if not is_maildir(path):
                raise BadInputError(f"{path}: a folder but not a Maildir (it has no cur/ and new/)")
            yield from _maildir(path, max_bytes)
        elif path.is_file():
            yield from _mbox_or_message(path, max_bytes)
        else:
            raise BadInputError(f"{path}: no such Maildir folder or mbox file")
    except OSError as exc:
        raise BadInputError(f"{path}: cannot read: {exc.strerror or exc}") from exc


def _capped(handle: _Readable, max_bytes: int, *, drain: bool = False) -> Incoming:
    """At most max_bytes of a message; a pipe is read to its end (the MTA must not see a
    broken pipe), a chunk at a time, without keeping what is over."""
    raw = handle.read(max_bytes + 1)
    if len(raw) <= max_bytes:
        return strip_envelope_line(raw)
    while drain and handle.read(CHUNK):
        pass
    return Oversized(max_bytes)


def _maildir(path: Path, max_bytes: int) -> Iterator[Incoming]:
    folder = mailbox.Maildir(path, factory=None, create=False)
    for key in sorted(folder.iterkeys()):
        try:
            handle = folder.get_file(key)
        except KeyError:
            continue  # removed by another reader (a mail client) since the listing
        with handle:
            yield _capped(handle, max_bytes)


def _mbox_or_message(path: Path, max_bytes: int) -> Iterator[Incoming]:
    with path.open("rb") as handle:
        first = handle.read(5)
    if first != b"From ":
        with path.open("rb") as handle:
            yield _capped(handle, max_bytes)  # one message, like a saved .eml
        return
    box = mailbox.mbox(path, factory=None, create=False)
    try:
        for key in box.iterkeys():
            with box.get_file(key) as handle:
                yield _capped(handle, max_bytes)
    finally:
        box.close()
