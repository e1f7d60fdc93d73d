"""A live site on loopback for link checks: every path answers 200 unless told otherwise."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class LiveSite:
    url: str
    statuses: dict[str, int] = field(default_factory=dict)  # path -> status (default 200)
    hits: list[str] = field(default_factory=list)


@contextmanager
def live_site() -> Iterator[LiveSite]:
    """A threaded HTTP server on 127.0.0.1 (a free port), stopped on exit."""
    site = LiveSite("")

    class Handler(BaseHTTPRequestHandler):
        def _answer(self, body: bool) -> None:
            site.hits.append(f"{self.command} {self.path}")
            status = site.statuses.get(self.path, 200)
            self.send_response(status)
            self.send_header("Content-Length", "2")
            self.end_headers()
            if body:
                self.wfile.write(b"ok")

        def do_HEAD(self) -> None:
            self._answer(body=False)

        def do_GET(self) -> None:
            self._answer(body=True)

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            self.rfile.read(length)
            self._answer(body=True)

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    site.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield site
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
