"""Open one candidate post file safely: regular files only, and no bigger than a cap.

posts ─► post_bytes: a FIFO, a device or a huge file is a PostError (one warning), never a hang.
"""

from __future__ import annotations

import os
import stat

from digest.errors import PostError

_KINDS = (
    (stat.S_ISDIR, "a folder"),
    (stat.S_ISFIFO, "a FIFO"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISSOCK, "a socket"),
)
_CHUNK = 64 * 1024


def read_post_bytes(file: str | os.PathLike[str], max_bytes: int) -> bytes:
    """The bytes of `file` if it is (a symlink to) a regular file of at most `max_bytes`."""
    where = os.fspath(file)
    try:
        # stat before open: opening a FIFO blocks until a writer comes, /dev/zero never ends.
        info = os.stat(where)
        if not stat.S_ISREG(info.st_mode):
            raise _not_regular(where, info.st_mode)
        _check_size(where, info.st_size, max_bytes)
        # O_NONBLOCK: should the file be swapped for a FIFO after the stat, the open won't hang.
        fd = os.open(where, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
        try:
            opened = os.fstat(fd)
            if not stat.S_ISREG(opened.st_mode):
                raise _not_regular(where, opened.st_mode)
            data = _read_up_to(fd, opened.st_size, max_bytes + 1)
        finally:
            os.close(fd)
    except OSError as exc:
        raise PostError(where, f"cannot read file: {exc.strerror or exc}") from exc
    _check_size(where, len(data), max_bytes)
    return data


def _read_up_to(fd: int, expected: int, limit: int) -> bytes:
    """At most `limit` bytes to the end of the file, sized by its stat (a file may grow)."""
    # Asking for `limit` bytes at once would allocate all of it (5 MB) for every small post.
    chunks = [os.read(fd, min(expected + 1, limit))]
    total = len(chunks[0])
    while chunks[-1] and total < limit:
        chunks.append(os.read(fd, min(_CHUNK, limit - total)))
        total += len(chunks[-1])
    return b"".join(chunks)


def _not_regular(where: str, mode: int) -> PostError:
    kind = next((name for test, name in _KINDS if test(mode)), "not a regular file")
    if os.path.islink(where):
        kind = f"a symlink to {kind}"
    return PostError(where, f"not a regular file ({kind}); only regular files are read")


def _check_size(where: str, size: int, max_bytes: int) -> None:
    if size > max_bytes:
        raise PostError(
            where, f"file is larger than site.max_post_bytes ({max_bytes:,} bytes); not read"
        )
