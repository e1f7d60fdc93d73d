"""The preferences page sets a subscriber's time zone (for deliver: local_time)."""

from __future__ import annotations

import base64
import hashlib
import re
from pathlib import Path

import pytest

from digest.settings import Settings
from digest.store import Store
from digest.store.subscribers import add_subscriber, find_subscriber
from digest.tokens import preferences_url
from tests.conftest import SmtpServer
from tests.helpers import web_client
from tests.helpers.site_fixtures import Site, make_site
from tests.helpers.web_client import Client, confirmation_link, path_of

client, settings, store = web_client.client, web_client.settings, web_client.store


@pytest.fixture
def site(tmp_path: Path, database_url: str, smtp_server: SmtpServer) -> Site:
    return make_site(
        tmp_path / "site", database_url, smtp_server.port, digests={"weekly": {}, "daily": {}}
    )


def test_the_preferences_page_sets_and_clears_the_time_zone(
    client: Client, settings: Settings, store: Store
) -> None:
    row, _ = add_subscriber(store, "kim@example.com")
    path = path_of(preferences_url(settings, row.id, row.link_key))
    page = client.get(path).body
    assert 'name="timezone"' in page
    token = re.search(r'name="form_token" value="([^"]+)"', page)
    assert token is not None
    base = [("form_token", token.group(1)), ("digests", "weekly"), ("digests", "daily")]
    answer = client.post_form(path, [*base, ("timezone", "Asia/Seoul")])
    assert answer.status == 200 and 'value="Asia/Seoul"' in answer.body
    saved = find_subscriber(store, "kim@example.com")
    assert saved is not None and saved.timezone == "Asia/Seoul"
    bad = client.post_form(path, [*base, ("timezone", "Moon/Base")])
    assert bad.status == 400 and "Unknown time zone" in bad.body
    kept = find_subscriber(store, "kim@example.com")
    assert kept is not None and kept.timezone == "Asia/Seoul"
    assert client.post_form(path, [*base, ("timezone", "")]).status == 200
    cleared = find_subscriber(store, "kim@example.com")
    assert cleared is not None and cleared.timezone is None


def test_the_signup_page_sends_the_browsers_zone_and_confirming_keeps_it(
    client: Client, store: Store, smtp_server: SmtpServer
) -> None:
    page = client.get("/subscribe")
    assert '<input type="hidden" id="timezone" name="timezone" value="">' in page.body
    # The page's one script is allowed by its hash, and is the script the page carries.
    script = re.search(r"<script>(.*?)</script>", page.body, re.S)
    assert script is not None
    digest_b64 = base64.b64encode(hashlib.sha256(script.group(1).encode()).digest()).decode()
    assert f"script-src 'sha256-{digest_b64}'" in page.headers["Content-Security-Policy"]
    fields = [("email", "yui@example.com"), ("timezone", "Asia/Tokyo")]
    assert client.post_form("/subscribe", fields).status == 202
    link = confirmation_link(smtp_server, "yui@example.com", client)
    assert client.call("POST", path_of(link)).status == 200
    row = find_subscriber(store, "yui@example.com")
    assert row is not None and (row.status, row.timezone) == ("active", "Asia/Tokyo")
    # A zone the browser made up is dropped: site.timezone then, and no error for the person.
    assert (
        client.post_form("/subscribe", [("email", "zed@example.com"), ("timezone", "X/Y")]).status
        == 202
    )
    client.send_queued()
    zed = find_subscriber(store, "zed@example.com")
    assert zed is not None and zed.timezone is None
