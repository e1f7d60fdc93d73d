"""Open one candidate post file safely: regular files only, and no bigger than a cap.

posts ─► post_bytes: a FIFO, a device or a huge file is a PostError (one warning), never a hang.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from digest.errors import PostError

_KINDS = (
    (stat.S_ISDIR, "a folder"),
    (stat.S_ISFIFO, "a FIFO"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISSOCK, "a socket"),
)


def read_post_bytes(file: Path, max_bytes: int) -> bytes:
    """The bytes of `file` if it is (a symlink to) a regular file of at most `max_bytes`."""
    where = str(file)
    try:
        # stat before open: opening a FIFO blocks until a writer comes, /dev/zero never ends.
        info = os.stat(file)
        if not stat.S_ISREG(info.st_mode):
            raise _not_regular(file, info.st_mode)
        _check_size(where, info.st_size, max_bytes)
        # O_NONBLOCK: should the file be swapped for a FIFO after the stat, the open won't hang.
        fd = os.open(file, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
        with open(fd, "rb") as stream:
            opened = os.fstat(stream.fileno())
            if not stat.S_ISREG(opened.st_mode):
                raise _not_regular(file, opened.st_mode)
            data = stream.read(max_bytes + 1)
    except OSError as exc:
        raise PostError(where, f"cannot read file: {exc.strerror or exc}") from exc
    _check_size(where, len(data), max_bytes)
    return data


def _not_regular(file: Path, mode: int) -> PostError:
    kind = next((name for test, name in _KINDS if test(mode)), "not a regular file")
    if file.is_symlink():
        kind = f"a symlink to {kind}"
    return PostError(str(file), f"not a regular file ({kind}); only regular files are read")


def _check_size(where: str, size: int, max_bytes: int) -> None:
    if size > max_bytes:
        raise PostError(
            where, f"file is larger than site.max_post_bytes ({max_bytes:,} bytes); not read"
        )
