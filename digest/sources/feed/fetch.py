"""Fetch a source feed over HTTP(S) or from a file: verified TLS, a deadline for the whole
request (connection, headers, body, redirects), a size cap, few redirects, and a conditional
GET (ETag / Last-Modified) so an unchanged feed costs nothing.

sources.feed calls fetch_feed(); every failure is one FeedError naming the feed (exit 1).
"""

from __future__ import annotations

import contextlib
import socket
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from digest import __version__
from digest.errors import FeedError
from digest.sources.guards import FileRefusedError, read_regular_file

TIMEOUT_SECONDS = 30.0
MAX_BYTES = 10 * 1024 * 1024
MAX_REDIRECTS = 5
USER_AGENT = f"digest/{__version__} (newsletter digest; feed reader)"
ACCEPT = (
    "application/rss+xml, application/atom+xml, application/feed+json, application/json;q=0.9, "
    "application/xml;q=0.8, text/xml;q=0.8, */*;q=0.5"
)


@dataclass(frozen=True)
class Fetched:
    """A fetch's outcome: a new body with its validators, or `not_modified` (HTTP 304)."""

    url: str
    body: bytes | None
    etag: str | None
    last_modified: str | None
    not_modified: bool = False


def is_remote(source: str) -> bool:
    return source.lower().startswith(("http://", "https://"))


def fetch_feed(
    source: str,
    *,
    etag: str | None = None,
    last_modified: str | None = None,
    timeout: float = TIMEOUT_SECONDS,
    max_bytes: int = MAX_BYTES,
    max_redirects: int = MAX_REDIRECTS,
) -> Fetched:
    """The feed at `source` (an http(s) URL or a file path), conditional on what was seen."""
    if not is_remote(source):
        return _read_file(source, max_bytes)
    headers = {"User-Agent": USER_AGENT, "Accept": ACCEPT}
    if etag:
        headers["If-None-Match"] = etag
    if last_modified:
        headers["If-Modified-Since"] = last_modified
    with _Deadline(timeout) as deadline:
        try:
            return _get(
                source, headers, etag, last_modified, timeout, max_bytes, max_redirects, deadline
            )
        except httpx.HTTPError as exc:
            if deadline.passed.is_set():
                raise _timed_out(source, timeout) from exc
            if isinstance(exc, httpx.TimeoutException):
                raise _timed_out(source, timeout) from exc
            if isinstance(exc, httpx.TooManyRedirects):
                raise FeedError(f"feed {source}: more than {max_redirects} redirects") from exc
            if isinstance(exc, httpx.ConnectError):
                raise FeedError(f"feed {source}: cannot connect: {_reason(exc)}") from exc
            raise FeedError(f"feed {source}: {_reason(exc)}") from exc


def _get(
    source: str,
    headers: dict[str, str],
    etag: str | None,
    last_modified: str | None,
    timeout: float,
    max_bytes: int,
    max_redirects: int,
    deadline: _Deadline,
) -> Fetched:
    with (
        httpx.Client(
            timeout=httpx.Timeout(timeout),
            follow_redirects=True,
            max_redirects=max_redirects,
            verify=True,
            headers=headers,
        ) as client,
        client.stream("GET", source, extensions={"trace": deadline.trace}) as response,
    ):
        final = str(response.url)
        if response.status_code == 304:
            return Fetched(final, None, etag, last_modified, not_modified=True)
        if response.status_code >= 400 or response.status_code < 200:
            reason = response.reason_phrase or "error"
            raise FeedError(f"feed {source}: HTTP {response.status_code} {reason}")
        declared = response.headers.get("content-length", "")
        if declared.isascii() and declared.isdigit() and int(declared) > max_bytes:
            raise _too_big(source, max_bytes)
        chunks: list[bytes] = []
        size = 0
        for chunk in response.iter_bytes():
            size += len(chunk)
            if size > max_bytes:
                raise _too_big(source, max_bytes)
            if deadline.passed.is_set():
                raise _timed_out(source, timeout)
            chunks.append(chunk)
        return Fetched(
            final,
            b"".join(chunks),
            response.headers.get("etag"),
            response.headers.get("last-modified"),
        )


class _Deadline:
    """A whole-request deadline: at `seconds` every socket the request opened is shut down.

    httpx's timeouts are per read: a server sending one byte a second keeps each read short
    and the request alive for ever. httpcore reports each connection it opens to the `trace`
    extension; shutting that socket down ends any read waiting on it at once.
    """

    def __init__(self, seconds: float) -> None:
        self.passed = threading.Event()
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()
        self._timer = threading.Timer(seconds, self._expire)
        self._timer.daemon = True

    def __enter__(self) -> _Deadline:
        self._timer.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._timer.cancel()

    def trace(self, event: str, info: dict[str, Any]) -> None:
        """httpcore's trace hook: remember each new connection's socket."""
        if event != "connection.connect_tcp.complete":
            return
        stream = info.get("return_value")
        sock = stream.get_extra_info("socket") if stream is not None else None
        if not isinstance(sock, socket.socket):
            return
        with self._lock:
            self._sockets.append(sock)
            expired = self.passed.is_set()
        if expired:
            _shut(sock)

    def _expire(self) -> None:
        with self._lock:
            self.passed.set()
            sockets = list(self._sockets)
        for sock in sockets:
            _shut(sock)


def _shut(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)


def _read_file(source: str, max_bytes: int) -> Fetched:
    """A feed file, through the guards every source file goes through: a FIFO, a device or a
    symlink to one is refused unopened, and no more than `max_bytes` is read."""
    path = Path(source.removeprefix("file://")).expanduser()
    try:
        body = read_regular_file(path, max_bytes, cap=f"the {max_bytes // 1024} KiB limit")
    except FileRefusedError as exc:
        raise FeedError(f"feed {path}: {exc}") from None
    except OSError as exc:
        raise FeedError(f"feed {path}: cannot read: {exc.strerror or exc}") from exc
    return Fetched(path.resolve().as_uri(), body, None, None)


def _too_big(source: str, max_bytes: int) -> FeedError:
    return FeedError(f"feed {source}: larger than the {max_bytes // 1024} KiB limit")


def _timed_out(source: str, timeout: float) -> FeedError:
    return FeedError(f"feed {source}: no complete answer within {timeout:g} seconds")


def _reason(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0]
