"""`digest serve` under load: page requests never read posts, one client cannot hold the
connection cap. A real waitress server on a free loopback port, in this process."""

from __future__ import annotations

import threading
import time
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

from waitress import wasyncore

from digest.web.server import DigestServer, make_server_for
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
