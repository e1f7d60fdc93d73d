"""What the emails say about themselves: the digest's own title everywhere (List-Id, subject's
`digest.title`, the pages), "since" the previous edition, "the latest posts" when nothing is
new (test sends and previews). Real sends to aiosmtpd, real SQLite."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from digest.delivery.preview import build_preview
from digest.delivery.run import send_digest, send_test
from digest.errors import ConfigError
from digest.i18n import format_date
from digest.store.subscribers import find_subscriber
from digest.tokens import unsubscribe_url
from digest.web import make_app
from tests.conftest import SmtpServer
from tests.helpers.site_fixtures import AS_OF, Site, add_subscribers, make_site
from tests.helpers.web_client import Client, path_of


def _site(tmp_path: Path, port: int, **digest: object) -> Site:
    weekly = {"categories": [], "lookback_days": 30, "min_posts": 1, **digest}
    return make_site(
        tmp_path / "site", f"sqlite:///{tmp_path / 'd.db'}", port, digests={"weekly": weekly}
    )


def _text(server: SmtpServer, address: str, index: int = -1) -> str:
    part = server.handler.to(address)[index].message.get_body(("plain",))
    assert part is not None
    return str(part.get_content())


def test_the_digests_title_is_its_name_everywhere(tmp_path: Path, smtp_server: SmtpServer) -> None:
    site = make_site(
        tmp_path / "site",
        f"sqlite:///{tmp_path / 'd.db'}",
        smtp_server.port,
        digests={
            "weekly": {
                "title": "Wochenüberblick",
                "subject": "{{ digest.title }}: {{ posts|length }}",
                "lookback_days": 7,
            }
        },
        extra={"site": {"lang": "de"}},
    )
    site.add_post("Neues", days_ago=1)
    store = site.store()
    add_subscribers(store, [("leser@example.com", [])])
    settings = site.settings()
    send_digest(settings, store, "weekly", as_of=AS_OF)
    (mail,) = smtp_server.handler.to("leser@example.com")
    msg = mail.message
    assert msg["Subject"] == "Wochenüberblick: 1"
    assert msg["List-Id"] == "Test Blog: Wochenüberblick <weekly.example.com>"
    html = msg.get_body(("html",))
    assert html is not None and "Wochenüberblick" in str(html.get_content())
    assert "Weekly" not in str(html.get_content())
    row = find_subscriber(store, "leser@example.com")
    assert row is not None
    page = Client(make_app(settings, store, mailer_thread=False)).get(
        path_of(unsubscribe_url(settings, row.id, "weekly", row.link_key))
    )
    assert "„Wochenüberblick“" in page.body or "Wochenüberblick" in page.body
    assert "Weekly" not in page.body  # the translated page keeps the title as written


def test_a_name_key_is_an_error_naming_title(tmp_path: Path, smtp_server: SmtpServer) -> None:
    site = _site(tmp_path, smtp_server.port, name="Wochenüberblick")
    with pytest.raises(ConfigError, match=r"digests\.weekly\.name: unknown key .*title"):
        site.settings()


def test_the_greeting_counts_since_the_previous_edition(
    tmp_path: Path, smtp_server: SmtpServer
) -> None:
    site = _site(tmp_path, smtp_server.port)
    site.add_post("First", days_ago=5)
    site.add_post("Second", days_ago=0.5)
    store = site.store()
    add_subscribers(store, [("ada@example.com", [])])
    settings = site.settings()
    first_at = AS_OF - timedelta(days=4)
    send_digest(settings, store, "weekly", as_of=first_at)
    send_digest(settings, store, "weekly", as_of=AS_OF)
    second = _text(smtp_server, "ada@example.com")
    day = format_date(first_at, "en", settings.site.tz)
    assert f"here is 1 new post since {day}." in second  # not the start of the 30-day lookback
    first = _text(smtp_server, "ada@example.com", 0)
    start = format_date(first_at - timedelta(days=30), "en", settings.site.tz)
    assert f"since {start}." in first  # the first edition: the lookback's start


def test_a_test_send_and_a_preview_with_nothing_new_say_latest_posts(
    tmp_path: Path, smtp_server: SmtpServer
) -> None:
    site = _site(tmp_path, smtp_server.port)
    site.add_post("Old One", days_ago=400)
    settings = site.settings()
    store = site.store()
    result = send_test(settings, store, "weekly", "me@example.com", as_of=AS_OF)
    assert result.latest
    (mail,) = smtp_server.handler.to("me@example.com")
    assert mail.message["Subject"] == "[TEST] Test Blog: the latest posts"
    text = _text(smtp_server, "me@example.com")
    assert "nothing is new, so here are the latest posts." in text
    assert "new post" not in text
    preview = build_preview(settings, "weekly", as_of=AS_OF)
    assert preview.segment is not None
    assert preview.segment.subject == "Test Blog: the latest posts"
    assert "nothing is new, so here are the latest posts from Test Blog." in preview.html
