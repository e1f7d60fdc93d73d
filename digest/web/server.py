"""The server of `digest serve`: the WSGI app made from settings, on waitress.

web's outer layer: `make_app` for any WSGI server, `make_server_for` and `serve` for our own.

waitress reads every request (headers and body, chunked ones decoded) in one event loop before
a bounded pool of threads runs the app: a slow or silent client costs a socket, not a thread,
and is dropped after CHANNEL_TIMEOUT seconds of silence.
"""

from __future__ import annotations

import contextlib
import ipaddress
import logging
import resource
import signal
import threading
from collections.abc import Callable
from dataclasses import dataclass
from types import FrameType
from typing import TYPE_CHECKING, Any

from waitress.adjustments import Adjustments
from waitress.channel import HTTPChannel
from waitress.server import MultiSocketServer, TcpWSGIServer
from waitress.task import ThreadedTaskDispatcher

from digest.bounces.sns import SnsVerifier
from digest.errors import DigestError
from digest.smtp.client import SmtpSender
from digest.web.clients import Network, is_trusted
from digest.web.forms import MAX_BODY
from digest.web.routes import DigestWebApp

if TYPE_CHECKING:
    from digest.settings import Settings
    from digest.store import Store

# The web side's logger keeps the name it had before it became a package (it is in log lines).
log = logging.getLogger("digest.web")

THREADS = 8  # requests handled at once; the rest wait, already read, in waitress's queue
CHANNEL_TIMEOUT = 30  # seconds a connection may stay silent (mid-request or idle) before it is cut
BACKLOG = 2048  # connections the kernel holds before waitress accepts them
CONNECTION_LIMIT = 4000  # open connections at once; more wait in the backlog
MAX_HEADER_BYTES = 32 * 1024
MAX_BODY_BYTES = 1024 * 1024  # waitress answers 413 beyond this; the app's own cap is smaller
ACCEPT_BURST = 256  # connections taken from the backlog each time the listening socket is ready
# Open connections one client address may hold (a browser opens 6; a NAT of many readers more).
MAX_CONNECTIONS_PER_CLIENT = 100
LOCAL_PROXY = (ipaddress.ip_network("127.0.0.1/32"), ipaddress.ip_network("::1/128"))


def make_app(
    settings: Settings,
    store: Store,
    *,
    max_body: int = MAX_BODY,
    sender_factory: Callable[[], SmtpSender] | None = None,
    mailer_thread: bool = True,
    sns: SnsVerifier | None = None,
) -> DigestWebApp:
    """The WSGI application; ConfigError if web.secret is missing or short.

    `sns` checks SES's SNS messages (by default against certificates fetched from Amazon).
    """
    return DigestWebApp(
        settings,
        store,
        max_body=max_body,
        sender_factory=sender_factory,
        mailer_thread=mailer_thread,
        sns=sns,
    )


@dataclass
class DigestServer:
    """A bound waitress server and the app it serves."""

    app: DigestWebApp
    waitress: Any  # waitress's TcpWSGIServer (its stubs type create_server's result loosely)

    @property
    def address(self) -> tuple[str, int]:
        """The (host, port) it listens on (the real port when asked for port 0)."""
        return str(self.waitress.effective_host), int(self.waitress.effective_port)


class ClientConnections:
    """Open connections per client address: at most `limit` each, except for the exempt
    addresses (proxies, whose connections carry many clients; the proxy limits those)."""

    def __init__(self, limit: int, exempt: tuple[Network, ...] = ()) -> None:
        self.limit = limit
        self.exempt = exempt
        self._open: dict[str, int] = {}
        self._lock = threading.Lock()

    def admit(self, peer: str) -> bool:
        """Count one more connection from `peer`, unless it holds `limit` already."""
        with self._lock:
            count = self._open.get(peer, 0)
            if count >= self.limit and not is_trusted(peer, self.exempt):
                return False
            self._open[peer] = count + 1
            return True

    def release(self, peer: str) -> None:
        with self._lock:
            count = self._open.get(peer, 0) - 1
            if count > 0:
                self._open[peer] = count
            else:
                self._open.pop(peer, None)


class _CountedChannel(HTTPChannel):
    """waitress's connection, counted for its client while it is open."""

    def __init__(self, clients: ClientConnections, peer: str, *args: Any, **kwargs: Any) -> None:
        self._clients, self._peer, self._counted = clients, peer, True
        try:
            super().__init__(*args, **kwargs)
        except BaseException:
            self._counted = False
            clients.release(peer)
            raise

    def del_channel(self, map: Any = None) -> None:
        if self._counted:
            self._counted = False
            self._clients.release(self._peer)
        super().del_channel(map)


class _BurstAcceptServer(TcpWSGIServer):
    """waitress's TCP server, taking every waiting connection (up to ACCEPT_BURST) each time
    the listening socket is ready: waitress takes one per turn of its loop, so a crowd of idle
    clients in the backlog would keep a new one (a health check) waiting for seconds. A client
    that holds MAX_CONNECTIONS_PER_CLIENT already has its new connection closed at once, so no
    one address can fill the CONNECTION_LIMIT."""

    clients: ClientConnections

    def handle_accept(self) -> None:
        for _ in range(ACCEPT_BURST):
            if not self._accept_one():
                return

    def _accept_one(self) -> bool:
        """Take one waiting connection; False when none is waiting (or accept failed)."""
        try:
            taken = self.accept()
            if taken is None:
                return False
            conn, addr = taken
            self.set_socket_options(conn)
        except OSError:
            return False  # the peer left before we took it (as waitress: skip it)
        addr = self.fix_addr(addr)
        peer = str(addr[0]) if isinstance(addr, tuple) and addr else str(addr)
        if not self.clients.admit(peer):
            with contextlib.suppress(OSError):
                conn.close()
            return True
        socket_map = getattr(self, "_map")  # noqa: B009 (not in the stubs)
        _CountedChannel(self.clients, peer, self, conn, addr, self.adj, map=socket_map)
        return True


def _waitress_server(app: DigestWebApp, adjustments: Adjustments) -> Any:
    """One listening server per address the host resolves to, sharing one thread pool."""
    socket_map: dict[int, Any] = {}
    dispatcher = ThreadedTaskDispatcher()
    dispatcher.set_thread_count(adjustments.threads)
    # After validation `listen` holds socket infos (the stubs call it a str); the servers have
    # effective_host/_port, which the stubs leave out: read both untyped.
    listen: list[Any] = getattr(adjustments, "listen")  # noqa: B009
    servers: list[Any] = [
        _BurstAcceptServer(
            app, socket_map, dispatcher=dispatcher, adj=adjustments, sockinfo=sockinfo
        )
        for sockinfo in listen
    ]
    # A local proxy (127.0.0.1, ::1) or a trusted one carries many clients: it limits them.
    exempt = (*app.context.trusted_proxies, *LOCAL_PROXY)
    clients = ClientConnections(MAX_CONNECTIONS_PER_CLIENT, exempt)
    for server in servers:
        server.clients = clients
    if len(servers) == 1:
        return servers[0]
    listening = [(server.effective_host, server.effective_port) for server in servers]
    return MultiSocketServer(socket_map, adjustments, listening, dispatcher)


def _raise_open_files_limit() -> None:
    """Each client is a socket: let the process hold as many as its hard limit allows."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = CONNECTION_LIMIT + 256
    if soft != resource.RLIM_INFINITY and soft < wanted:
        ceiling = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
        resource.setrlimit(resource.RLIMIT_NOFILE, (ceiling, hard))


def make_server_for(
    settings: Settings, store: Store, host: str = "127.0.0.1", port: int = 8080
) -> DigestServer:
    """A bound, not yet serving server (port 0 picks a free one: see DigestServer.address)."""
    app = make_app(settings, store, mailer_thread=False)
    _raise_open_files_limit()
    try:
        adjustments = Adjustments(
            host=host,
            port=port,
            threads=THREADS,
            channel_timeout=CHANNEL_TIMEOUT,
            backlog=BACKLOG,
            connection_limit=CONNECTION_LIMIT,
            max_request_header_size=MAX_HEADER_BYTES,
            max_request_body_size=MAX_BODY_BYTES,
            ident="digest",  # the Server header: no name of the software below, no version
            # The app decides whose X-Forwarded-For it believes (web.trusted_proxies).
            clear_untrusted_proxy_headers=False,
            # poll(), not select(): select() cannot watch more than 1024 sockets.
            asyncore_use_poll=True,
            expose_tracebacks=False,
        )
        server = _waitress_server(app, adjustments)
    except OSError as exc:
        raise DigestError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from exc
    return DigestServer(app, server)


def serve(server: DigestServer) -> None:
    """Serve (and send queued confirmation mails) until SIGTERM or SIGINT, then stop cleanly."""

    def stop(signum: int, frame: FrameType | None) -> None:
        log.info("signal %d: stopping", signum)
        raise SystemExit(0)  # waitress's loop ends on SystemExit and stops its threads

    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGTERM, signal.SIGINT)}
    server.app.mailer.start()
    server.app.context.categories.start()
    try:
        server.waitress.run()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        server.app.mailer.stop()
        server.app.context.categories.stop()
        server.waitress.close()
