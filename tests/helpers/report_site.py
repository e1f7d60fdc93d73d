"""A site with twelve weeks of weekly runs (made with `digest send --as-of`), for the report."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from click.testing import CliRunner

from digest.cli import cli
from tests.conftest import SmtpServer
from tests.helpers.site_fixtures import Site, make_site

WEEKS = 12
REFUSED = "nobody@example.com"


def twelve_weeks(root: Path, smtp_server: SmtpServer, *, lang: str = "en") -> Site:
    """Subscribers in three categories who joined over twelve weeks (one more refused by the
    relay: a failed delivery, then bounced) and a run of `weekly` each week up to now."""
    site = make_site(
        root,
        f"sqlite:///{root.parent / f'report-{lang}.db'}",
        smtp_server.port,
        max_attempts=1,
        extra={"site": {"lang": lang}},
    )
    now = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    editions = [now - timedelta(weeks=WEEKS - 1 - i) for i in range(WEEKS)]
    topics = ["Rust", "Go", "Machine Learning"]
    for number, when in enumerate(editions, start=1):
        site.add_post(f"Week {number}", days_ago=1, as_of=when, categories=[topics[number % 3]])
    runner = CliRunner()

    def run(*args: str) -> None:
        result = runner.invoke(cli, ["--config", str(site.config_path), *args])
        assert result.exit_code == 0, result.output

    # Forty people who joined over the twelve weeks (their consent record says when): the
    # list grows on the chart; some chose a topic, some every post; two left, one bounced.
    people = root / "people.csv"
    lines = ["email,categories,status,consent_requested_at,consent_confirmed_at,consent_source"]
    for index in range(40):
        joined = editions[0] - timedelta(days=7) + timedelta(days=2 * index)
        topic = [*topics, "", "Rust;Go"][index % 5]
        status = {7: "unsubscribed", 19: "unsubscribed", 23: "bounced"}.get(index, "active")
        stamp = joined.isoformat()
        lines.append(f"p{index}@example.com,{topic},{status},{stamp},{stamp},web")
    people.write_text("\n".join(lines) + "\n", encoding="utf-8")
    run("subscribers", "import", str(people))
    run("subscribers", "add", REFUSED)
    smtp_server.handler.permanent[REFUSED] = "550 5.1.1 No such user"
    run("subscribers", "add", "late@example.com", "--category", "Rust")
    run("subscribers", "unsubscribe", "late@example.com")
    for when in editions:
        run("send", "weekly", "--as-of", when.isoformat())
    return site
