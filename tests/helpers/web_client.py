"""digest serve's WSGI app called in-process: a small client, and the site, settings, store and
client fixtures the web tests share (import the fixtures a module uses; override `site`).
"""

from __future__ import annotations

import io
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlencode
from wsgiref.util import setup_testing_defaults

import pytest

from digest.settings import Settings
from digest.store import Store
from digest.store.subscribers import find_subscriber
from digest.web import DigestWebApp, make_app
from tests.conftest import SmtpServer
from tests.helpers.site_fixtures import Site, make_site

BASE = "https://news.example.com"


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: str

    @property
    def json(self) -> dict[str, object]:
        data = json.loads(self.body)
        assert isinstance(data, dict)
        return data


@dataclass
class Client:
    app: DigestWebApp

    @classmethod
    def of(cls, settings: Settings, store: Store) -> Client:
        """A client of a new app (its mailer run by send_queued, not by a thread)."""
        return cls(make_app(settings, store, mailer_thread=False))

    def call(
        self,
        method: str,
        path: str,
        body: bytes = b"",
        content_type: str = "",
        accept: str = "text/html",
        remote_addr: str = "127.0.0.1",
        forwarded_for: str = "",
    ) -> Answer:
        environ: dict[str, object] = {}
        setup_testing_defaults(environ)
        environ.update(
            REQUEST_METHOD=method,
            PATH_INFO=path,
            CONTENT_LENGTH=str(len(body)),
            CONTENT_TYPE=content_type,
            HTTP_ACCEPT=accept,
            REMOTE_ADDR=remote_addr,
        )
        if forwarded_for:
            environ["HTTP_X_FORWARDED_FOR"] = forwarded_for
        environ["wsgi.input"] = io.BytesIO(body)
        seen: dict[str, object] = {}

        def start_response(status: str, headers: list[tuple[str, str]], exc: object = None) -> None:
            seen["status"], seen["headers"] = status, headers

        data = b"".join(self.app(environ, start_response))  # type: ignore[arg-type]
        status = str(seen["status"])
        headers = dict(seen["headers"])  # type: ignore[call-overload]
        return Answer(int(status.split()[0]), headers, data.decode("utf-8"))

    def send_queued(self) -> int:
        """What the mailer thread of `digest serve` does within seconds: send queued mail."""
        return self.app.mailer.run_once()

    def get(self, path: str, accept: str = "text/html") -> Answer:
        return self.call("GET", path, accept=accept)

    def post_form(
        self, path: str, fields: dict[str, str] | list[tuple[str, str]], accept: str = "text/html"
    ) -> Answer:
        body = urlencode(fields).encode()
        return self.call("POST", path, body, "application/x-www-form-urlencoded", accept)


def multipart(fields: list[tuple[str, str]]) -> tuple[bytes, str]:
    boundary = "----digestTestBoundary7MA4YWxk"
    out = b""
    for name, value in fields:
        out += (
            f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'
        ).encode()
    out += f"--{boundary}--\r\n".encode()
    return out, f"multipart/form-data; boundary={boundary}"


def path_of(url: str) -> str:
    assert url.startswith(BASE + "/")
    return url[len(BASE) :]


def status_of(store: Store, email: str) -> tuple[str, str | None]:
    row = find_subscriber(store, email)
    assert row is not None
    return row.status, row.status_reason


def confirmation_link(smtp_server: SmtpServer, address: str, client: Client | None = None) -> str:
    if client is not None:
        client.send_queued()
    (received,) = smtp_server.handler.to(address)
    text = received.message.get_body(("plain",))
    assert text is not None
    match = re.search(r"https://news\.example\.com/confirm/\S+", str(text.get_content()))
    assert match is not None
    return match.group(0)


# --- fixtures: a module imports those it uses ---------------------------------------------------


@pytest.fixture
def site(tmp_path: Path, database_url: str, smtp_server: SmtpServer) -> Site:
    return make_site(tmp_path / "site", database_url, smtp_server.port)


@pytest.fixture
def settings(site: Site) -> Settings:
    return site.settings()


@pytest.fixture
def store(site: Site) -> Iterator[Store]:
    store = site.store()
    yield store
    store.dispose()


@pytest.fixture
def client(settings: Settings, store: Store) -> Client:
    return Client.of(settings, store)
