"""A big site's post files read in several processes, with the result of reading them in one.

posts ─► post_workers: contiguous shares of the files, forked readers, and each share's posts,
problems and log records handed back in order; anything unusual and the files are read here.
"""

from __future__ import annotations

import contextlib
import gc
import logging
import math
import os
import pickle
import signal
import sys
import threading
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Generic, NamedTuple, TypeAlias, TypeVar

from digest.errors import PostError

if TYPE_CHECKING:  # multiprocessing loads only for a site big enough to fork readers for
    from multiprocessing.connection import Connection
    from multiprocessing.process import BaseProcess

log = logging.getLogger(__name__)

# Below this many files one process reads a site in well under a second, and forked readers
# only add CPU: the fork, copy-on-write faults in both processes and pickling the posts back
# made two readers of 5,000 posts cost 20-50% more CPU than one, for 0.1 s less wall time
# on an idle machine (none on a busy one).
MIN_FILES = 10_000
MAX_PROCESSES = 4

S = TypeVar("S")
R = TypeVar("R")
# What reading one file gave: its result, or the problem it reported.
Outcome: TypeAlias = R | PostError
_FAILED = b""  # what a child sends when reading its share raised something else


def process_count(files: int) -> int:
    """How many processes (this one included) should read `files` files: 1 means here only.

    More only for a big site on a machine with a CPU to spare (the one-minute load average,
    rounded down, leaves more than one free: on a busy 2-CPU machine at load 6, two readers took
    3.4 s where one took 2.6 s), and only from a process without other threads: a fork copies a
    lock another thread holds, and can hang on it.
    """
    if files < MIN_FILES or threading.active_count() > 1:
        return 1
    import multiprocessing

    if multiprocessing.current_process().daemon:  # may not have children
        return 1
    if "fork" not in multiprocessing.get_all_start_methods():
        return 1
    return max(1, min(_free_cpus(), MAX_PROCESSES, files // (MIN_FILES // 2)))


def _free_cpus() -> int:
    """The CPUs this process may use, less those the machine's load already keeps busy."""
    try:
        busy = math.floor(os.getloadavg()[0])
    except OSError:  # pragma: no cover - no load average to read
        busy = 0
    return _cpus() - busy


def _cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


class Handback(NamedTuple, Generic[S, R]):
    """How a child hands a result back: `pack` makes it cheaper to pickle (in the child), and
    `unpack` makes it again from that and its source (here)."""

    pack: Callable[[R], object]
    unpack: Callable[[object, S], R]


def read_all(
    read: Callable[[S], R],
    sources: Sequence[S],
    processes: int,
    handback: Handback[S, R] | None = None,
) -> list[Outcome[R]]:
    """`read` of every source, in order; a PostError it raises is that source's outcome.

    With more than one process, the first share is read here while forked children read the
    others; their outcomes and log records come back in order, so logs and results are those
    of reading every file here. A child that fails has its share read here again.
    """
    with _collector_paused():
        return _read_shares(read, _split(sources, processes), handback)


def _read_shares(
    read: Callable[[S], R], shares: list[Sequence[S]], handback: Handback[S, R] | None = None
) -> list[Outcome[R]]:
    if len(shares) < 2:
        return _read_share(read, shares[0] if shares else [])
    # Flushed first, or each child would write out its copy of what is still buffered.
    for stream in (sys.stdout, sys.stderr):
        if stream is not None:
            stream.flush()
    started: list[tuple[BaseProcess, Connection] | None] = []
    try:
        for share in shares[1:]:
            started.append(_start(read, share, handback))
        outcomes = _read_share(read, shares[0])
        for share, child in zip(shares[1:], started, strict=True):
            handed = _collect(read, share, child[1] if child else None, handback)
            outcomes.extend(handed)
        return outcomes
    finally:
        for child in started:
            if child is not None:
                _stop(*child)


@contextlib.contextmanager
def _collector_paused() -> Iterator[None]:
    """No garbage collection while files are read: posts hold no cycles, and the collections
    that thousands of new objects set off would each walk the whole heap for nothing. Forked
    children inherit the pause: walking the heap would also make them copy every page of it."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _start(
    read: Callable[[S], R], share: Sequence[S], handback: Handback[S, R] | None = None
) -> tuple[BaseProcess, Connection] | None:
    """A forked child reading `share`, and the end of the pipe it answers on; None if the
    system would not start one (its share is then read here)."""
    import multiprocessing

    context = multiprocessing.get_context("fork")
    receiver, sender = context.Pipe(duplex=False)
    try:
        pack = handback.pack if handback else None
        process = context.Process(target=_child, args=(read, share, sender, pack), daemon=True)
        process.start()
    except OSError as exc:  # too many processes, no memory to fork
        log.debug("no post reader process (%s); its files are read here", exc)
        receiver.close()
        return None
    finally:
        sender.close()
    return process, receiver


def _stop(process: BaseProcess, receiver: Connection) -> None:
    receiver.close()
    if process.is_alive():  # only when the reading here raised
        process.terminate()
    process.join()


def _split(sources: Sequence[S], processes: int) -> list[Sequence[S]]:
    count = max(1, min(processes, len(sources)))
    size, extra = divmod(len(sources), count)
    shares, start = [], 0
    for index in range(count):
        end = start + size + (1 if index < extra else 0)
        shares.append(sources[start:end])
        start = end
    return shares


def _read_share(read: Callable[[S], R], share: Sequence[S]) -> list[Outcome[R]]:
    outcomes: list[Outcome[R]] = []
    for source in share:
        try:
            outcomes.append(read(source))
        except PostError as exc:
            outcomes.append(exc)
    return outcomes


def _collect(
    read: Callable[[S], R],
    share: Sequence[S],
    receiver: Connection | None,
    handback: Handback[S, R] | None = None,
) -> list[Outcome[R]]:
    """A child's outcomes, its log records logged here in order; its share read here if it
    failed (a bug then raises here, with its traceback, as it would have without children)."""
    if receiver is None:
        return _read_share(read, share)
    try:
        received = receiver.recv_bytes()
    except (EOFError, OSError):  # the child died (killed, out of memory) before it answered
        received = _FAILED
    if received == _FAILED:
        log.debug("a post reader process failed; its %d files are read here", len(share))
        return _read_share(read, share)
    outcomes: list[Outcome[R]]
    records: list[logging.LogRecord]
    outcomes, records = pickle.loads(received)
    for record in records:
        logging.getLogger(record.name).handle(record)
    if handback is not None:
        unpack = handback.unpack
        outcomes = [
            outcome if isinstance(outcome, PostError) else unpack(outcome, source)
            for outcome, source in zip(outcomes, share, strict=True)
        ]
    return outcomes


def _child(
    read: Callable[[S], R],
    share: Sequence[S],
    sender: Connection,
    pack: Callable[[R], object] | None = None,
) -> None:
    """In a forked child: read a share, keeping log records to hand back with the outcomes."""
    # Ctrl-C is the parent's to handle: it stops its children (no traceback from each).
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    records: list[logging.LogRecord] = []
    logging.getLogger().handlers[:] = [_Keep(records)]
    try:
        outcomes = _read_share(read, share)
        handed: list[object] = [
            o if pack is None or isinstance(o, PostError) else pack(o) for o in outcomes
        ]
        payload = pickle.dumps((handed, records), pickle.HIGHEST_PROTOCOL)
    except Exception:  # a bug (or something unpicklable): the parent reads this share itself
        payload = _FAILED
    try:
        sender.send_bytes(payload)
    except OSError:  # the parent stopped listening (it failed or was interrupted)
        pass
    finally:
        sender.close()


class _Keep(logging.Handler):
    """Keeps records, made ready to pickle (message formatted, traceback as text)."""

    def __init__(self, records: list[logging.LogRecord]) -> None:
        super().__init__()
        self._records = records

    def emit(self, record: logging.LogRecord) -> None:
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        record.msg = record.getMessage()
        record.args = None
        record.exc_info = None
        self._records.append(record)
