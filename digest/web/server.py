"""The server of `digest serve`: the WSGI app made from settings, on wsgiref with a thread each.

web's outer layer: `make_app` for any WSGI server, `make_server_for` and `serve` for our own.
"""

from __future__ import annotations

import logging
import signal
import socketserver
import threading
from collections.abc import Callable
from types import FrameType
from typing import TYPE_CHECKING, Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from digest.errors import DigestError
from digest.smtp import SmtpSender
from digest.web.forms import MAX_BODY
from digest.web.routes import DigestWebApp, hide_tokens

if TYPE_CHECKING:
    from digest.config import Settings
    from digest.store import Store

# The web side's logger keeps the name it had before it became a package (it is in log lines).
log = logging.getLogger("digest.web")


def make_app(
    settings: Settings,
    store: Store,
    *,
    max_body: int = MAX_BODY,
    sender_factory: Callable[[], SmtpSender] | None = None,
) -> DigestWebApp:
    """The WSGI application; ConfigError if web.secret is missing or short."""
    return DigestWebApp(settings, store, max_body=max_body, sender_factory=sender_factory)


class ThreadingWSGIServer(socketserver.ThreadingMixIn, WSGIServer):
    """wsgiref's server with a thread per request (one slow client does not stall others)."""

    daemon_threads = True


class _QuietHandler(WSGIRequestHandler):
    """The app writes the access log (tokens shortened); wsgiref's own would show them whole."""

    server_version = "digest"
    sys_version = ""

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        """Nothing: the app has logged the request already."""

    def log_message(self, format: str, *args: Any) -> None:
        message = format % args if args else format
        log.debug("http: %s", hide_tokens(message))


def make_server_for(
    settings: Settings, store: Store, host: str = "127.0.0.1", port: int = 8080
) -> ThreadingWSGIServer:
    """A bound, not yet serving server (port 0 picks a free one: see server_port)."""
    app = make_app(settings, store)
    try:
        server = make_server(
            host, port, app, server_class=ThreadingWSGIServer, handler_class=_QuietHandler
        )
    except OSError as exc:
        raise DigestError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from exc
    assert isinstance(server, ThreadingWSGIServer)
    return server


def serve(server: ThreadingWSGIServer) -> None:
    """Serve until SIGTERM or SIGINT, then stop cleanly."""

    def stop(signum: int, frame: FrameType | None) -> None:
        log.info("signal %d: stopping", signum)
        threading.Thread(target=server.shutdown, daemon=True).start()

    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        server.serve_forever(poll_interval=0.5)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        server.server_close()
