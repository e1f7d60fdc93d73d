"""The preferences page sets a subscriber's time zone (for deliver: local_time)."""

from __future__ import annotations

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
from tests.helpers.web_client import Client, path_of

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
