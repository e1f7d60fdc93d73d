"""`digest check` and `check_links`: a post whose URL does not answer holds or skips a run."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from digest.cli import cli
from digest.store.runs import sent_post_ids
from tests.conftest import SmtpServer
from tests.helpers.http_site import LiveSite, live_site
from tests.helpers.site_fixtures import AS_OF, Site, add_subscribers, make_site

WHEN = AS_OF.isoformat()


@pytest.fixture
def live() -> Iterator[LiveSite]:
    with live_site() as site:
        yield site


def site_for(tmp_path: Path, smtp: SmtpServer, live: LiveSite, mode: str) -> Site:
    site = make_site(
        tmp_path / "site",
        f"sqlite:///{tmp_path / 'digest.db'}",
        smtp.port,
        digests={"weekly": {"check_links": mode, "lookback_days": 7}},
        extra={"site": {"url": live.url}},
    )
    site.add_post("Good one", days_ago=1)
    site.add_post("Not deployed", days_ago=2)
    store = site.store()
    add_subscribers(store, [("ada@example.com", [])])
    store.dispose()
    return site


def dead_path(site: Site) -> str:
    return "/" + "/".join(["2026", "11", "25", "not-deployed.html"])


def send(site: Site) -> tuple[int, str, str]:
    result = CliRunner().invoke(
        cli, ["--config", str(site.config_path), "send", "weekly", "--as-of", WHEN]
    )
    return result.exit_code, result.stdout, result.stderr


def test_hold_starts_no_run_until_the_post_answers(
    tmp_path: Path, smtp_server: SmtpServer, live: LiveSite
) -> None:
    site = site_for(tmp_path, smtp_server, live, "hold")
    live.statuses[dead_path(site)] = 404
    code, _out, err = send(site)
    assert code == 1
    dead = f"{live.url}{dead_path(site)}"
    assert err.strip() == (
        f"error: weekly: held: {dead} answers 404; no run started (check_links: hold)"
    )
    assert smtp_server.handler.messages == []
    store = site.store()
    with store.session() as session:
        assert sent_post_ids(session, "weekly") == set()
    # Deployed now: the run goes, with both posts.
    live.statuses.clear()
    code, _out, err = send(site)
    assert code == 0, err
    assert len(smtp_server.handler.messages) == 1
    with store.session() as session:
        assert len(sent_post_ids(session, "weekly")) == 2


def test_skip_sends_the_rest_and_leaves_the_dead_post_new(
    tmp_path: Path, smtp_server: SmtpServer, live: LiveSite
) -> None:
    site = site_for(tmp_path, smtp_server, live, "skip")
    live.statuses[dead_path(site)] = 404
    code, _out, err = send(site)
    assert code == 0, err
    assert f"{live.url}{dead_path(site)} answers 404; post left new for the next run" in err
    [message] = smtp_server.handler.messages
    body = message.message.get_body(("html",)).get_content()  # type: ignore[union-attr]
    assert "Good one" in body and "Not deployed" not in body
    store = site.store()
    with store.session() as session:
        assert sent_post_ids(session, "weekly") == {site.posts[0]}


def test_check_lists_each_url_and_exits_1_on_a_dead_post(
    tmp_path: Path, smtp_server: SmtpServer, live: LiveSite
) -> None:
    site = site_for(tmp_path, smtp_server, live, "off")
    live.statuses[dead_path(site)] = 404
    runner = CliRunner()
    args = ["--config", str(site.config_path), "check", "weekly", "--as-of", WHEN]
    result = runner.invoke(cli, [*args, "--format", "json"])
    assert result.exit_code == 1
    rows = json.loads(result.stdout)
    by_url = {r["url"]: r for r in rows}
    dead = by_url[f"{live.url}{dead_path(site)}"]
    assert dead == {
        "url": dead.get("url"),
        "kind": "post",
        "post": site.posts[1],
        "status": 404,
        "ok": False,
    }
    assert [r["ok"] for r in rows if r["kind"] == "post"] == [True, False]
    assert result.stderr.strip().endswith("answers 404")
    # --all-links also fetches every link of the email (the site's home page among them).
    live.statuses.clear()
    result = runner.invoke(cli, [*args, "--all-links"])
    assert result.exit_code == 0, result.output
    assert f"link   {live.url}/" in result.stdout
    assert "0 not live" in result.stdout
