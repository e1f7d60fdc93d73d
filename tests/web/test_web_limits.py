"""`digest serve` under load: page requests never read posts, one client cannot hold the
connection cap. A real waitress server on a free loopback port, in this process."""

from __future__ import annotations

import socket
import threading
import time
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

from waitress import wasyncore

from digest.web.server import CONNECTION_LIMIT, DigestServer, make_server_for
from tests.conftest import SmtpServer
from tests.helpers.site_fixtures import Site, make_site

# A post whose Liquid takes its whole time limit each time the posts are read.
SLOW = "{% for i in (1..99000) %}{{ i }}{% endfor %}"


@contextmanager
def serving(site: Site) -> Iterator[tuple[DigestServer, str]]:
    store = site.store()
    server = make_server_for(site.settings(), store, "127.0.0.1", 0)
    thread = threading.Thread(target=server.waitress.run, daemon=True)
    thread.start()
    host, port = server.address
    try:
        yield server, f"http://{host}:{port}"
    finally:
        server.app.context.categories.stop()
        server.waitress.task_dispatcher.shutdown()
        wasyncore.close_all(server.waitress._map)  # ends the loop: no socket left in its map
        thread.join(timeout=10)


def _get(url: str) -> int:
    with urllib.request.urlopen(url, timeout=60) as answer:
        answer.read()
        return int(answer.status)


def test_healthz_answers_while_twenty_signup_pages_load_and_posts_are_reread(
    tmp_path: Path, migrated_sqlite_url: str, smtp_server: SmtpServer
) -> None:
    site = make_site(tmp_path / "site", migrated_sqlite_url, smtp_server.port)
    site.add_post("Slow one", categories=["rust"], body=SLOW)
    site.add_post("Slow two", categories=["go"], body=SLOW)
    with serving(site) as (server, base):
        categories = server.app.context.categories
        categories.refresh_seconds = 0.01  # re-read the posts over and over meanwhile
        categories.start()
        with ThreadPoolExecutor(max_workers=21) as pool:
            pages = [pool.submit(_get, base + "/subscribe") for _ in range(20)]
            time.sleep(0.2)  # the page requests are in
            started = time.monotonic()
            assert _get(base + "/healthz") == 200
            health_took = time.monotonic() - started
            assert [page.result() for page in pages] == [200] * 20
    assert health_took < 1.0, health_took


def test_one_client_with_4100_idle_sockets_cannot_hold_the_server(
    tmp_path: Path, migrated_sqlite_url: str, smtp_server: SmtpServer
) -> None:
    """More idle sockets than the server's connection cap (4,000), all from 127.0.0.2: it keeps
    100 of them and closes the rest at once; /healthz from another address answers."""
    site = make_site(tmp_path / "site", migrated_sqlite_url, smtp_server.port)
    held: list[socket.socket] = []
    with serving(site) as (_server, base):
        port = int(base.rsplit(":", 1)[1])
        try:
            for _ in range(CONNECTION_LIMIT + 100):
                held.append(
                    socket.create_connection(
                        ("127.0.0.1", port), timeout=5, source_address=("127.0.0.2", 0)
                    )
                )
            started = time.monotonic()
            assert _get(base + "/healthz") == 200
            health_took = time.monotonic() - started
            # The flood's sockets past its share were closed by the server.
            closed = sum(1 for conn in held[-50:] if _closed(conn))
        finally:
            for conn in held:
                conn.close()
    assert health_took < 1.0, health_took
    assert closed == 50


def _closed(conn: socket.socket) -> bool:
    conn.settimeout(5)
    try:
        return conn.recv(1) == b""
    except OSError:
        return True
