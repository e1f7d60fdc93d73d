"""The archive: each run's copy stored once, "View in browser" links, /archive pages, Atom feed.

Real sends to aiosmtpd, real databases, the WSGI app called in-process, feedparser as the judge.
"""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path
from xml.etree import ElementTree

import feedparser
import pytest
from sqlalchemy import delete

from digest.archive import atom_feed, with_back_link
from digest.delivery.run import send_digest
from digest.errors import SmtpConnectError
from digest.store.archive import ArchivedRun, archived_run, archived_runs
from digest.store.models import RunArchive
from digest.web import make_app
from tests.conftest import SmtpServer, free_port, sqlite_only
from tests.helpers.site_fixtures import AS_OF, Site, add_subscribers, make_site
from tests.helpers.web_client import BASE, Client, path_of


def make(tmp_path: Path, database_url: str, port: int, *, archive: bool) -> Site:
    site = make_site(tmp_path / "site", database_url, port, extra={"web": {"archive": archive}})
    site.add_post("Rust Tips", categories=["Engineering"])
    site.add_post("Book Fair", categories=["Culture"], days_ago=2)
    return site


def html_of(server: SmtpServer, address: str) -> str:
    part = server.handler.to(address)[-1].message.get_body(("html",))
    assert part is not None
    return str(part.get_content())


def text_of(server: SmtpServer, address: str) -> str:
    part = server.handler.to(address)[-1].message.get_body(("plain",))
    assert part is not None
    return str(part.get_content())


def test_with_the_archive_on_every_run_is_linked_listed_and_in_the_feed(
    tmp_path: Path, migrated_database_url: str, smtp_server: SmtpServer
) -> None:
    site = make(tmp_path, migrated_database_url, smtp_server.port, archive=True)
    store = site.store()
    add_subscribers(store, [("all@example.com", []), ("eng@example.com", ["Engineering"])])
    settings = site.settings()
    (first,) = send_digest(settings, store, "weekly", as_of=AS_OF)
    site.add_post("Later News", days_ago=-0.5, categories=["Engineering"])
    (second,) = send_digest(settings, store, "weekly", as_of=AS_OF + timedelta(days=1))
    assert first.sent == 2 and second.sent == 2

    first_url = f"{BASE}/archive/weekly/{first.run_id}"
    second_url = f"{BASE}/archive/weekly/{second.run_id}"
    eng_html = html_of(smtp_server, "eng@example.com")
    assert f'<a href="{second_url}"' in eng_html and "View in browser" in eng_html
    assert f"View in browser: {second_url}" in text_of(smtp_server, "eng@example.com")

    # The stored copy has every post of the run and nothing personal.
    copy = archived_run(store, "weekly", first.run_id)
    assert copy is not None
    assert "Rust Tips" in copy.html and "Book Fair" in copy.html
    assert "@example.com" not in copy.html.replace("news@example.com", "")
    assert "/unsubscribe/" not in copy.html and "@@DIGEST" not in copy.html
    assert "View in browser" not in copy.html

    client = Client(make_app(settings, store, mailer_thread=False))
    index = client.get("/archive")
    assert index.status == 200
    links = re.findall(r'href="([^"]+/archive/weekly/\d+)"', index.body)
    assert links == [second_url, first_url]  # newest first
    page = client.get(path_of(first_url))
    # The stored copy, with a way back to the archive at the top.
    assert page.status == 200 and page.body == with_back_link(
        copy.html, f"{BASE}/archive", "← All issues"
    )
    assert client.get("/archive/weekly/999999").status == 404
    assert client.get(f"/archive/monthly/{first.run_id}").status == 404

    feed_answer = client.get("/archive/weekly.atom")
    assert feed_answer.status == 200
    assert feed_answer.headers["Content-Type"].startswith("application/atom+xml")
    feed = feedparser.parse(feed_answer.body.encode("utf-8"))
    assert not feed.bozo, feed.get("bozo_exception")
    assert feed.version == "atom10"
    assert [entry.link for entry in feed.entries] == [second_url, first_url]
    assert "Rust Tips" in feed.entries[1].content[0].value


@sqlite_only
def test_with_the_default_there_is_no_archive_and_no_link(
    tmp_path: Path, migrated_database_url: str, smtp_server: SmtpServer
) -> None:
    site = make(tmp_path, migrated_database_url, smtp_server.port, archive=False)
    store = site.store()
    add_subscribers(store, [("all@example.com", [])])
    settings = site.settings()
    (report,) = send_digest(settings, store, "weekly", as_of=AS_OF)
    assert report.sent == 1
    assert "/archive/" not in html_of(smtp_server, "all@example.com")
    assert "View in browser" not in text_of(smtp_server, "all@example.com")
    client = Client(make_app(settings, store, mailer_thread=False))
    for path in ("/archive", f"/archive/weekly/{report.run_id}", "/archive/weekly.atom"):
        assert client.get(path).status == 404, path
    # Stored all the same: turning the archive on later shows the runs sent before.
    assert [r.run_id for r in archived_runs(store, "weekly")] == [report.run_id]


def test_a_resumed_run_gets_its_copy_if_a_crash_lost_it(
    tmp_path: Path, migrated_database_url: str, smtp_server: SmtpServer
) -> None:
    down = make(tmp_path, migrated_database_url, free_port(), archive=True)
    store = down.store()
    add_subscribers(store, [("all@example.com", [])])
    with pytest.raises(SmtpConnectError):
        send_digest(down.settings(), store, "weekly", as_of=AS_OF)
    (run,) = archived_runs(store)
    # As if the process died between creating the run and storing its copy.
    with store.write_transaction() as session:
        session.execute(delete(RunArchive))
    up = make_site(
        tmp_path / "site", migrated_database_url, smtp_server.port, extra={"web": {"archive": True}}
    )
    (resumed, _nothing_new) = send_digest(up.settings(), store, "weekly", as_of=AS_OF)
    assert resumed.resumed and resumed.sent == 1
    assert [r.run_id for r in archived_runs(store)] == [run.run_id]
    assert f"/archive/weekly/{run.run_id}" in html_of(smtp_server, "all@example.com")


def test_the_atom_feed_stays_xml_with_a_control_character_in_a_stored_title(
    tmp_path: Path,
) -> None:
    site = make_site(tmp_path / "site", f"sqlite:///{tmp_path / 'd.db'}", 25)
    stored = ArchivedRun(
        1, "weekly", "Big\x01 news \x1b]52;c;ZXZpbA==\x07", AS_OF, AS_OF, "<p>\x0c</p>"
    )
    body = atom_feed(site.settings(), "weekly", [stored])
    entry = ElementTree.fromstring(body).find("{http://www.w3.org/2005/Atom}entry")
    assert entry is not None
    assert entry.findtext("{http://www.w3.org/2005/Atom}title") == "Big news ]52;c;ZXZpbA=="
