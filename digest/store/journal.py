"""Each sending thread's journal of accepted messages: one line per relay reply, written before
the next body goes; the database catches up a window at a time.

delivery ─► store.journal ◄─ store.workers (whoever takes over a dead sender reads its journal).

A write() to a file is the kernel's once it returns: it survives the process being killed
(SIGKILL, the OOM killer) without an fsync, though not a crash of the machine. So a sender may
record its sent marks in the database 16 at a time and still lose at most the message on the
wire per connection to a kill: the next sender on this machine reads the dead one's journal,
marks what it names as sent, and counts only the message after it as a possible re-send.

Where: beside an SQLite database (`<file>.senders/`), else in the user's state directory
($XDG_STATE_HOME/digest/senders/). One file per thread: `<worker id>.<n>.log`, a line per
message (delivery id, Message-ID, reply, Unix time; tab-separated). A thread removes its file
when everything in it is in the database; it is cut back to empty whenever that is so and it
has grown past TRIM_BYTES.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import NamedTuple

log = logging.getLogger(__name__)

SUFFIX = ".log"
TRIM_BYTES = 1 << 20  # a journal whose lines are all in the database is emptied past this


class JournalEntry(NamedTuple):
    """One accepted message as its sender's journal holds it."""

    delivery_id: int
    message_id: str
    reply: str
    sent_at: datetime


def journal_dir(url: str) -> Path | None:
    """Where the senders of the database at `url` keep their journals (None: in memory)."""
    if url.startswith("sqlite"):
        database = url.split("///", 1)[1] if "///" in url else ""
        database = database.split("?", 1)[0]
        if not database or database == ":memory:":
            return None
        path = Path(database)
        return path.with_name(path.name + ".senders")
    state = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(state) / "digest" / "senders"


def _file_prefix(worker_id: str) -> str:
    return worker_id.replace(":", "_").replace("/", "_") + "."


def _clean(text: str) -> str:
    return text.replace("\t", " ").replace("\r", " ").replace("\n", " / ")


class Journal:
    """One sending thread's journal (not shared between threads: no lock)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd: int | None = os.open(
            path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o600
        )
        self._size = 0
        self.unrecorded = 0  # lines not yet in the database

    @classmethod
    def open(cls, url: str, worker_id: str, number: int) -> Journal | None:
        """A new journal for a thread of `worker_id`; None (and a warning) when none can be made:
        the thread then records each message in the database before the next body goes."""
        folder = journal_dir(url)
        if folder is None:
            return None
        try:
            folder.mkdir(mode=0o700, parents=True, exist_ok=True)
            return cls(folder / f"{_file_prefix(worker_id)}{number}{SUFFIX}")
        except OSError as exc:
            log.warning(
                "no journal of sent messages in %s (%s): each is recorded in the database "
                "before the next goes (slower)",
                folder,
                exc.strerror or exc,
            )
            return None

    def write(self, delivery_id: int, message_id: str, reply: str) -> None:
        """The relay accepted the message: note it before anything else goes."""
        assert self._fd is not None
        line = f"{delivery_id}\t{_clean(message_id)}\t{_clean(reply)}\t{time.time():.3f}\n"
        data = line.encode()
        os.write(self._fd, data)
        self._size += len(data)
        self.unrecorded += 1

    def recorded(self, count: int) -> None:
        """`count` of its lines are now committed to the database."""
        self.unrecorded -= count
        if self.unrecorded == 0 and self._size > TRIM_BYTES and self._fd is not None:
            os.ftruncate(self._fd, 0)  # all of it is in the database
            self._size = 0

    def close(self) -> None:
        """Close it, and remove it when the database holds all of it (else the next sender
        reads it)."""
        fd, self._fd = self._fd, None
        if fd is None:
            return
        os.close(fd)
        if self.unrecorded == 0:
            try:
                self.path.unlink()
            except OSError as exc:
                log.warning("could not remove %s: %s", self.path, exc.strerror or exc)


def find_journals(url: str, worker_id: str) -> list[Path]:
    """The journals a (dead) sender left; empty when it kept none here."""
    folder = journal_dir(url)
    if folder is None or not folder.is_dir():
        return []
    return sorted(folder.glob(f"{_file_prefix(worker_id)}*{SUFFIX}"))


def read_journals(paths: Iterable[Path]) -> list[JournalEntry]:
    """Every whole line of the journals (a torn last line is left out)."""
    entries: list[JournalEntry] = []
    for path in paths:
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            continue  # another taker removed it after applying it
        for line in data.split(b"\n")[:-1]:
            fields = line.decode("utf-8", "replace").split("\t")
            if len(fields) != 4:
                continue
            try:
                entries.append(
                    JournalEntry(
                        int(fields[0]),
                        fields[1],
                        fields[2],
                        datetime.fromtimestamp(float(fields[3]), UTC),
                    )
                )
            except ValueError:
                continue
    return entries


def remove_journals(paths: Iterable[Path]) -> None:
    """Journals applied to the database (after the commit that applied them)."""
    for path in paths:
        try:
            path.unlink()
        except FileNotFoundError:
            pass
        except OSError as exc:
            log.warning("could not remove %s: %s", path, exc.strerror or exc)
